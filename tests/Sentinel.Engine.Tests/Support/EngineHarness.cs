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
    public Sentinel.Engine.History.HistoryStore? History { get; private set; }
    private Microsoft.AspNetCore.Builder.WebApplication? _web;
    public ILoggerFactory Loggers { get; } = NullLoggerFactory.Instance;

    public static string Config(string rules) => EngineSection + "\n" + rules;

    /// <summary>The engine's clock (a FakeTimeProvider in tests of time logic); the system clock by default.</summary>
    public TimeProvider? Time { get; init; }

    /// <summary>Serves the engine's HTTP surface on a real Kestrel server at a free loopback port; returns its address.</summary>
    public async Task<Uri> ServeAsync(string? token = null)
    {
        Engine.ApiToken = token;
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        Microsoft.AspNetCore.Hosting.WebHostBuilderKestrelExtensions.UseKestrel(builder.WebHost, k => k.Listen(System.Net.IPAddress.Loopback, 0));
        _web = builder.Build();
        Sentinel.Engine.Api.EngineEndpoints.MapSentinel(_web, Engine);
        await _web.StartAsync();
        return new Uri(_web.Urls.First());
    }

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
        History = settings.History.Enabled
            ? Sentinel.Engine.History.HistoryStore.Open(Path.Combine(settings.StateDirectory, "history.db"), Loggers.CreateLogger("history"))
            : null;
        Engine = new SentinelEngine(result.Config!, Catalog, Store, Loggers, time: Time, loader: loader, history: History) { ReloadDelay = TimeSpan.FromMilliseconds(200) };
        await Engine.StartAsync();
    }

    /// <summary>Stops the engine as `sentinel run` does on SIGTERM, keeping the folder for a restart.</summary>
    public async Task StopEngineAsync()
    {
        if (_stopped) return;
        _stopped = true;
        if (_web is not null) await _web.DisposeAsync();
        _web = null;
        await Engine.DisposeAsync();
        if (History is not null) await History.DisposeAsync();
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
