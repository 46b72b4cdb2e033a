using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Tests.Support;

/// <summary>A real engine (real Quartz, real SQLite file, real plugin folder) over a config written to a temp folder.</summary>
public sealed class EngineHarness : IAsyncDisposable
{
    public const string EngineSection = """
        engine:
          http: { enabled: false }
          plugins: plugins
          state: state
          log: { directory: "" }
          state-flush-interval: 100ms
        """;

    private EngineHarness(TempDir dir, string configPath)
    {
        Dir = dir;
        ConfigPath = configPath;
    }

    public TempDir Dir { get; }
    public string ConfigPath { get; }
    public PluginCatalog Catalog { get; private set; } = null!;
    public SqliteStateStore Store { get; private set; } = null!;
    public SentinelEngine Engine { get; private set; } = null!;
    public ILoggerFactory Loggers { get; } = NullLoggerFactory.Instance;

    public static string Config(string rules) => EngineSection + "\n" + rules;

    /// <summary>Writes the config, then (if <paramref name="start"/>) loads plugins and starts the engine.</summary>
    public static async Task<EngineHarness> StartAsync(string rulesYaml, TempDir? dir = null, Action<TempDir>? prepare = null, bool start = true)
    {
        dir ??= new TempDir();
        var path = dir.File("sentinel.yaml", Config(rulesYaml));
        prepare?.Invoke(dir);
        var harness = new EngineHarness(dir, path);
        if (start) await harness.StartEngineAsync();
        return harness;
    }

    private bool _stopped;

    public async Task StartEngineAsync()
    {
        _stopped = false;
        var loader = new ConfigLoader();
        var (settings, errors) = loader.LoadEngine(ConfigPath);
        errors.Should().BeEmpty();
        Catalog = new PluginCatalog(settings!.PluginsDirectory, Loggers.CreateLogger("plugins"), builtIn: [new TestProbesPlugin()]) { ReloadDelay = TimeSpan.FromMilliseconds(200) };
        Catalog.LoadAll();
        var result = loader.Load(ConfigPath, Catalog);
        result.Errors.Should().BeEmpty();
        Store = SqliteStateStore.Open(Path.Combine(settings.StateDirectory, "sentinel.db"), Loggers.CreateLogger("state"));
        Engine = new SentinelEngine(result.Config!, Catalog, Store, Loggers, loader: loader) { ReloadDelay = TimeSpan.FromMilliseconds(200) };
        await Engine.StartAsync();
    }

    /// <summary>Stops the engine as `sentinel run` does on SIGTERM, keeping the folder for a restart.</summary>
    public async Task StopEngineAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await Engine.DisposeAsync();
        await Store.DisposeAsync();
        Catalog.Dispose();
    }

    public void WriteConfig(string rulesYaml) => File.WriteAllText(ConfigPath, Config(rulesYaml));

    public async ValueTask DisposeAsync()
    {
        if (Engine is not null) await StopEngineAsync();
        // Supervised services outlive the engine by design; a test must not leave them behind.
        var supervised = Path.Combine(Dir.Path, "state", "supervise");
        if (Directory.Exists(supervised))
            foreach (var pidfile in Directory.GetFiles(supervised, "*.pid"))
                if (int.TryParse(File.ReadAllText(pidfile).Trim(), out var pid))
                    try { System.Diagnostics.Process.GetProcessById(pid).Kill(entireProcessTree: true); }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException) { }
        Dir.Dispose();
    }
}
