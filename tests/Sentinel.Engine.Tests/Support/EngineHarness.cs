using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Tests.Support;

/// <summary>
/// A real engine (real SQLite file, real plugin folder, real processes) over a config written to a temp folder. Its
/// clock is a <see cref="FakeTimeProvider"/> and its scheduler a <see cref="ManualRuleScheduler"/>: nothing is checked
/// until the test moves the clock (<see cref="AdvanceAsync"/>), so time logic is tested exactly and without waiting.
/// <c>realClock: true</c> runs the engine as `sentinel run` does (Quartz on the system clock), for the few tests
/// that are about real scheduling.
/// </summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    public const string EngineSection = """
        engine:
          http: { enabled: false }
          plugins: plugins
          state: state
          log: { directory: "" }
          state-flush-interval: 100ms
        """;

    /// <summary>Where the fake clock starts: a fixed Monday morning, so runs are repeatable.</summary>
    public static DateTimeOffset Epoch { get; } = new(2026, 1, 5, 9, 0, 0, TimeSpan.Zero);

    private EngineHarness(TempDir dir, string configPath, bool realClock)
    {
        Dir = dir;
        ConfigPath = configPath;
        if (!realClock)
        {
            FakeTime = new FakeTimeProvider(Epoch);
            Scheduler = new ManualRuleScheduler(FakeTime);
        }
    }

    public TempDir Dir { get; }
    public string ConfigPath { get; }
    public PluginCatalog Catalog { get; private set; } = null!;
    public SqliteStateStore Store { get; private set; } = null!;
    public SentinelEngine Engine { get; private set; } = null!;
    public Sentinel.Engine.History.SqliteHistoryStore? History { get; private set; }
    private Microsoft.AspNetCore.Builder.WebApplication? _web;
    public ILoggerFactory Loggers { get; } = NullLoggerFactory.Instance;

    public static string Config(string rules) => EngineSection + "\n" + rules;

    /// <summary>The engine's clock (null with the real clock).</summary>
    public FakeTimeProvider? FakeTime { get; }

    /// <summary>The engine's scheduler, which a test drives (null with the real clock, where Quartz runs).</summary>
    public ManualRuleScheduler? Scheduler { get; private set; }

    /// <summary>The current time of the engine's clock.</summary>
    public DateTimeOffset Now => FakeTime?.GetUtcNow() ?? DateTimeOffset.UtcNow;

    /// <summary>Moves the fake clock on by <paramref name="by"/>, firing every rule at each of its due times on the way.</summary>
    public Task AdvanceAsync(TimeSpan by, bool waitForChecks = true) => Drive.AdvanceAsync(by, waitForChecks);

    /// <summary>Fires the rules due now (all of them right after the start) and waits for their checks.</summary>
    public Task RunDueAsync() => Drive.RunDueAsync();

    /// <summary>
    /// Moves the clock on in steps of <paramref name="step"/> until <paramref name="condition"/> holds, for outcomes that
    /// other parts (the outbox's sender, a process, a file watcher) bring about after a check; fails after
    /// <paramref name="limit"/> of fake time.
    /// </summary>
    public async Task AdvanceUntilAsync(Func<bool> condition, TimeSpan step, TimeSpan? limit = null,
        [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(condition))] string? what = null, bool waitForChecks = true)
    {
        var end = Now + (limit ?? TimeSpan.FromHours(1));
        var real = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (Now >= end || real.Elapsed > Eventually.DefaultLimit)
                throw new TimeoutException($"not reached within {limit ?? TimeSpan.FromHours(1)} of fake time ({real.Elapsed.TotalSeconds:0.#}s real): {what}");
            await Drive.AdvanceAsync(step, waitForChecks);
            // What a check set off (the event bus, the outbox's sender) runs on other threads: give it its turn.
            if (!condition()) await Task.Delay(5);
        }
    }

    private ManualRuleScheduler Drive => Scheduler ?? throw new InvalidOperationException("this harness runs on the real clock");

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
    public static async Task<EngineHarness> StartAsync(string rulesYaml, TempDir? dir = null, Action<TempDir>? prepare = null, bool start = true, bool realClock = false)
    {
        dir ??= new TempDir();
        var path = dir.File("sentinel.yaml", Config(rulesYaml));
        prepare?.Invoke(dir);
        var harness = new EngineHarness(dir, path, realClock);
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
        Catalog = new PluginCatalog(settings!.PluginDirectories, Loggers.CreateLogger("plugins"), builtIn: [new TestProbesPlugin()]) { ReloadDelay = TimeSpan.FromMilliseconds(200) };
        Catalog.LoadAll();
        var result = loader.Load(ConfigPath, Catalog, allowMissingPlugins: true); // as `sentinel run` does
        result.Errors.Should().BeEmpty();
        Store = SqliteStateStore.Open(Path.Combine(settings.StateDirectory, "sentinel.db"), Loggers.CreateLogger("state"));
        History = settings.History.Enabled
            ? Sentinel.Engine.History.SqliteHistoryStore.Open(Path.Combine(settings.StateDirectory, "history.db"), Loggers.CreateLogger("history"))
            : null;
        // A restarted engine gets a new scheduler (the old one was stopped with its engine) on the same clock.
        if (FakeTime is not null) Scheduler = new ManualRuleScheduler(FakeTime);
        Engine = new SentinelEngine(result.Config!, Catalog, Store, Loggers, time: FakeTime, scheduler: Scheduler, loader: loader, history: History)
        {
            ReloadDelay = TimeSpan.FromMilliseconds(200),
        };
        if (Scheduler is not null) Scheduler.AfterChecks = Engine.Events.DrainAsync;
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
