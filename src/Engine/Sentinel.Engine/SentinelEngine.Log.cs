using Microsoft.Extensions.Logging;

namespace Sentinel.Engine;

// What the engine itself logs.
internal sealed partial class SentinelEngine
{
    [LoggerMessage(EventId = 17, Level = LogLevel.Warning, Message = "Stopping: events were still being handled after 10s; the rest are not written")]
    private static partial void LogDrainTimedOut(ILogger logger);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Sentinel {Version} started: {Rules} rules from {ConfigFile}")]
    private static partial void LogStarted(ILogger logger, string version, int rules, string configFile);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Sentinel stopped; state flushed")]
    private static partial void LogStopped(ILogger logger);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "The check history could not be read ({Reason}); uptime starts from now")]
    private static partial void LogHistoryUnreadable(ILogger logger, string reason);

    [LoggerMessage(EventId = 904, Level = LogLevel.Error, Message = "The node rules could not be applied: {Errors}")]
    private static partial void LogNodeRulesFailed(ILogger logger, string errors);

    [LoggerMessage(EventId = 905, Level = LogLevel.Information, Message = "Cluster slots spread: {Moved} moved, over {Nodes} live nodes")]
    private static partial void LogSlotsSpread(ILogger logger, int moved, int nodes);
}
