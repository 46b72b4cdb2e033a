using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Runtime;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>
/// The config watcher sees the config and its includes, in folders that exist and folders created later, but not
/// Sentinel's own state and log folders kept beside the config (each write there was an event to read and drop).
/// Real files, real inotify.
/// </summary>
public sealed class ConfigWatcherTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("sentinel-watch-").FullName;

    [Fact]
    public async Task IncludesBesideTheConfig_AreWatched_SentinelsOwnFoldersAreNot()
    {
        var config = Path.Combine(_root, "sentinel.yaml");
        File.WriteAllText(config, "rules: []");
        var state = Directory.CreateDirectory(Path.Combine(_root, "state")).FullName;
        var logs = Directory.CreateDirectory(Path.Combine(_root, "logs")).FullName;
        var includes = Directory.CreateDirectory(Path.Combine(_root, "conf.d", "team")).FullName;
        var noticed = new ConcurrentQueue<string>();
        var reloads = 0;
        using var watcher = new ConfigWatcher(config, TimeSpan.FromMilliseconds(20), TimeProvider.System,
            () => { Interlocked.Increment(ref reloads); return Task.CompletedTask; }, NullLogger.Instance, [state, logs + "/"])
        { Noticed = noticed.Enqueue };
        watcher.Start();

        // Written first: had they been watched, their events would come before the include's.
        File.WriteAllText(Path.Combine(state, "stray.yaml"), "x");
        File.WriteAllText(Path.Combine(logs, "stray.yml"), "x");
        File.WriteAllText(Path.Combine(includes, "bot.yaml"), "rules: []");
        await Eventually.Until(() => noticed.Contains(Path.Combine(includes, "bot.yaml")), what: "an include two folders down");
        File.AppendAllText(config, "\n");
        await Eventually.Until(() => noticed.Contains(config), what: "the config itself");
        await Eventually.Until(() => Volatile.Read(ref reloads) >= 1, what: "a reload");
        noticed.Should().NotContain(p => p.StartsWith(state + "/") || p.StartsWith(logs + "/"));

        // A folder made after the start is watched once the watcher has seen it appear.
        var later = Directory.CreateDirectory(Path.Combine(_root, "later")).FullName;
        await Eventually.Until(() =>
        {
            File.WriteAllText(Path.Combine(later, "new.yaml"), "rules: []");
            return noticed.Contains(Path.Combine(later, "new.yaml"));
        }, what: "an include in a folder created later");
    }

    [Fact]
    public async Task WithNoFolderOfItsOwnBesideTheConfig_EverythingBelowIsWatched()
    {
        var config = Path.Combine(_root, "sentinel.yaml");
        File.WriteAllText(config, "rules: []");
        var deep = Directory.CreateDirectory(Path.Combine(_root, "a", "b")).FullName;
        var noticed = new ConcurrentQueue<string>();
        using var watcher = new ConfigWatcher(config, TimeSpan.FromMilliseconds(20), TimeProvider.System, () => Task.CompletedTask,
            NullLogger.Instance, ["/var/lib/elsewhere", ""]) { Noticed = noticed.Enqueue };
        watcher.Start();
        File.WriteAllText(Path.Combine(deep, "x.yml"), "rules: []");
        await Eventually.Until(() => noticed.Contains(Path.Combine(deep, "x.yml")), what: "an include two folders down");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
