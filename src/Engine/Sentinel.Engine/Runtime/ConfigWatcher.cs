using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// Watches the config file's folder (and below, where includes live) for changed <c>.yaml</c>/<c>.yml</c> files, and
/// reloads after <paramref name="delay"/> of quiet: an editor's save (write, rename, touch) is one reload. Sentinel's
/// own folders kept beside the config (<paramref name="ownFolders"/>: state, logs) are not watched: every write to the
/// state database was an event for the watcher to read and drop (a sixth of the CPU outside the thread pool under
/// 1,000 checks a second). A folder created beside the config later is watched from then on.
/// </summary>
internal sealed partial class ConfigWatcher(string configFile, TimeSpan delay, TimeProvider time, Func<Task> reload, ILogger logger,
    IReadOnlyCollection<string>? ownFolders = null) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private ITimer? _debounce;
    private HashSet<string> _skipped = [];
    private bool _disposed;

    /// <summary>Test hook: each config file change noticed, with its path.</summary>
    internal Action<string>? Noticed { get; set; }

    public void Start()
    {
        var root = Path.GetDirectoryName(Path.GetFullPath(configFile))!;
        _skipped = (ownFolders ?? []).Where(f => !string.IsNullOrEmpty(f)).Select(f => Path.TrimEndingDirectorySeparator(Path.GetFullPath(f)))
            .Where(f => string.Equals(Path.GetDirectoryName(f), root, StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        if (_skipped.Count == 0)
        {
            Watch(root, recursive: true);
            return;
        }
        // The config's folder itself, then each folder in it but Sentinel's own, with everything below.
        var top = Watch(root, recursive: false);
        top.Created += (_, e) => { if (Directory.Exists(e.FullPath)) WatchFolder(e.FullPath); };
        top.Renamed += (_, e) => { if (Directory.Exists(e.FullPath)) WatchFolder(e.FullPath); };
        foreach (var folder in Directory.EnumerateDirectories(root)) WatchFolder(folder);
    }

    private void WatchFolder(string folder)
    {
        if (_skipped.Contains(Path.TrimEndingDirectorySeparator(folder))) return;
        try { Watch(folder, recursive: true); }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException) { } // gone again, or unreadable
    }

    private FileSystemWatcher Watch(string folder, bool recursive)
    {
        var watcher = new FileSystemWatcher(folder)
        {
            IncludeSubdirectories = recursive,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
        };
        FileSystemEventHandler onChange = (_, e) =>
        {
            if (!e.FullPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) && !e.FullPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)) return;
            Noticed?.Invoke(e.FullPath);
            Changed();
        };
        watcher.Changed += onChange;
        watcher.Created += onChange;
        watcher.Deleted += onChange;
        watcher.Renamed += (s, e) => onChange(s, e);
        lock (_gate)
        {
            if (_disposed)
            {
                watcher.Dispose();
                return watcher;
            }
            _watchers.Add(watcher);
        }
        watcher.EnableRaisingEvents = true;
        return watcher;
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
        lock (_gate)
        {
            _disposed = true;
            foreach (var w in _watchers) w.Dispose();
            _watchers.Clear();
            _debounce?.Dispose();
        }
    }

    [LoggerMessage(EventId = 28, Level = LogLevel.Error, Message = "Reloading the configuration failed")]
    private static partial void LogReloadFailed(ILogger logger, Exception ex);
}
