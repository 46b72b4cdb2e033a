using Sentinel.Abstractions;

namespace Sentinel.Plugins.Logs;

public sealed class LogsPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<LogRegexProbe, LogRegexProbeOptions>("log-regex",
            "Lines appended to a log that match a pattern (ERROR, Traceback...), rotation-aware, offsets kept across restarts.");
        registrar.AddProbe<LogGrowthProbe, LogGrowthProbeOptions>("log-growth",
            "A log (or any file) keeps growing: a bot that stops logging is usually a hung bot. Rotation counts when the new file grows.");
    }
}
