using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// Watches the config file's folder (and below, where includes live) for changed <c>.yaml</c>/<c>.yml</c> files, and
/// reloads after <paramref name="delay"/> of quiet: an editor's save (write, rename, touch) is one reload.
/// </summary>
internal sealed partial class ConfigWatcher(string configFile, TimeSpan delay, TimeProvider time, Func<Task> reload, ILogger logger) : IDisposable
{
    private readonly Lock _gate = new();
    private FileSystemWatcher? _watcher;
    private ITimer? _debounce;

    public void Start()
    {
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(configFile)!)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
        };
        FileSystemEventHandler onChange = (_, e) =>
        {
            if (e.FullPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || e.FullPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)) Changed();
        };
        _watcher.Changed += onChange;
        _watcher.Created += onChange;
        _watcher.Deleted += onChange;
        _watcher.Renamed += (s, e) => onChange(s, e);
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>A change was seen: the reload runs once no other change came for the delay.</summary>
    public void Changed()
    {
        lock (_gate)
        {
            if (_debounce is null)
                _debounce = time.CreateTimer(_ => _ = Task.Run(async () =>
                {
                    try { await reload(); }
                    catch (Exception ex) when (ex is not OperationCanceledException) { LogReloadFailed(logger, ex); }
                }), null, delay, Timeout.InfiniteTimeSpan);
            else _debounce.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        lock (_gate) _debounce?.Dispose();
    }

    [LoggerMessage(EventId = 28, Level = LogLevel.Error, Message = "Reloading the configuration failed")]
    private static partial void LogReloadFailed(ILogger logger, Exception ex);
}
