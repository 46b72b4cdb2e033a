using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Remediation;

/// <summary>A real supervised process under the remediation policy, with the policy's clock faked.</summary>
public sealed class SupervisorPolicyTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
    private readonly TestHost _host = new();
    private readonly CancellationTokenSource _stopping = new();
    private RuleRemediator? _remediator;

    public static string Service => Path.Combine(TestPaths.RepoRoot, "tests", "services", "testservice.py");

    internal static RuleDefinition Load(TempDir dir, string rule)
    {
        var path = dir.File("sentinel.yaml", EngineHarness.Config(rule));
        var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new TestProbesPlugin()]);
        catalog.LoadAll();
        var result = new ConfigLoader().Load(path, catalog);
        result.Errors.Should().BeEmpty();
        return result.Config!.Rules.Single();
    }

    [Fact]
    public async Task CrashLoop_BacksOff_GivesUpOnce_RetriesSlowly_AndResetsAfterStable()
    {
        var marker = _dir.File("FAIL", "");
        var port = Path.Combine(_dir.Path, "port");
        var def = Load(_dir, $$"""
            rules:
              - name: svc
                supervise:
                  shell: true
                  command: "if [ -e '{{marker}}' ]; then echo 'boom: cannot start'; exit 3; fi; exec /usr/bin/python3 '{{Service}}' --port-file '{{port}}'"
                backoff: { initial: 10s, factor: 2, max: 1m, jitter: 0 }
                restart-budget: { max: 3, within: 10m, retry-after: 10m, stable-after: 5m }
            """);
        _remediator = new RuleRemediator(def, [], _host, NullLoggerFactory.Instance, _time, _stopping.Token);
        var t0 = _time.GetUtcNow();
        _remediator.Activate();

        // The first start fails, attempt 1 follows at once (the first attempt of an episode is immediate).
        var a1 = await _host.WaitFor(RemediationEventKind.RemediationFailed, attempt: 1);
        a1.When.Should().Be(t0);
        a1.Message.Should().Contain("exited with code 3");
        a1.Output.Should().Contain(l => l.Contains("boom: cannot start"));

        _time.Advance(TimeSpan.FromSeconds(10));
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 2)).When.Should().Be(t0 + TimeSpan.FromSeconds(10));
        await _host.WaitFor(RemediationEventKind.RemediationFailed, attempt: 2);
        _time.Advance(TimeSpan.FromSeconds(20));
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 3)).When.Should().Be(t0 + TimeSpan.FromSeconds(30));
        await _host.WaitFor(RemediationEventKind.RemediationFailed, attempt: 3);

        // The third start fails too and a fourth is needed at once: the budget (3 within 10m) is spent, gave-up, once.
        var gaveUp = await _host.WaitFor(RemediationEventKind.GaveUp, attempt: 3);
        gaveUp.When.Should().Be(t0 + TimeSpan.FromSeconds(30));
        _host.State.GaveUp.Should().BeTrue();

        // Slow retries every retry-after, still failing, with no second gave-up.
        _time.Advance(TimeSpan.FromMinutes(10));
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 4)).When.Should().Be(t0 + TimeSpan.FromSeconds(30) + TimeSpan.FromMinutes(10));
        await _host.WaitFor(RemediationEventKind.RemediationFailed, attempt: 4);

        // The cause is fixed; the next slow retry starts it, and it counts as started after its start period.
        File.Delete(marker);
        _time.Advance(TimeSpan.FromMinutes(10));
        await _host.WaitFor(RemediationEventKind.Remediating, attempt: 5);
        await Eventually.Until(() => File.Exists(port), what: "the service answering");
        await PassStartPeriodAsync(attempt: 5);
        (await _host.WaitFor(RemediationEventKind.Remediated, attempt: 5)).Message.Should().StartWith("started pid");
        _host.Events.Count(e => e.Kind == RemediationEventKind.GaveUp).Should().Be(1);

        // Healthy for stable-after: budget, backoff and gave-up are reset.
        var pid = _remediator.Supervisor!.Current!.Pid;
        _remediator.OnCheck(_host.Rule(RuleStatus.Healthy), Check(true));
        _time.Advance(TimeSpan.FromMinutes(5));
        _remediator.OnCheck(_host.Rule(RuleStatus.Healthy), Check(true));
        _host.State.Should().BeEquivalentTo(new { Streak = 0, GaveUp = false, Total = 5L });

        // So a crash now is restarted at once, as attempt 1 of a new episode.
        var crashAt = _time.GetUtcNow();
        await Tell(File.ReadAllText(port), "crash");
        (await _host.WaitFor(RemediationEventKind.Exited, attempt: 0, after: crashAt)).Message.Should().Contain($"pid {pid}").And.Contain("exited with code 1");
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 1, after: crashAt)).When.Should().Be(crashAt);
        await Eventually.Until(() => _remediator.Supervisor.Current is { } p && p.Pid != pid, what: "a new pid");
    }

    [Fact]
    public async Task ExitZero_WithRestartOnFailure_StaysStopped_WhileACrashIsRestarted()
    {
        var port = Path.Combine(_dir.Path, "port");
        var def = Load(_dir, $$"""
            rules:
              - name: svc
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"], restart: on-failure }
            """);
        _remediator = new RuleRemediator(def, [], _host, NullLoggerFactory.Instance, _time, _stopping.Token);
        _remediator.Activate();
        await Eventually.Until(() => File.Exists(port));
        var first = _remediator.Supervisor!.Current!;
        var firstPort = File.ReadAllText(port);
        File.Delete(port);
        await Tell(firstPort, "crash");
        await _host.WaitFor(RemediationEventKind.Remediating, attempt: 1);
        await Eventually.Until(() => _remediator.Supervisor.Current is { } p && p.Pid != first.Pid);
        await Eventually.Until(() => File.Exists(port), what: "the restarted service listening");
        await PassStartPeriodAsync(attempt: 1);
        var second = _remediator.Supervisor.Current!;

        await Tell(File.ReadAllText(port), "exit0");
        // The restarted service's exit, found by its pid rather than by the attempt it carries (the streak when the exit
        // is reported): once in CI an "attempt 1" exit said code 1, and an attempt number cannot tell which process it was.
        var exited = await Eventually.Until(() => _host.Events.FirstOrDefault(e => e.Kind == RemediationEventKind.Exited && e.Message.Contains($"(pid {second.Pid})")),
            e => e is not null, what: "the restarted service's exit");
        exited!.Message.Should().Contain("exited with code 0");
        _time.Advance(TimeSpan.FromMinutes(30));
        _remediator.Supervisor.IsRunning.Should().BeFalse();
        _host.Events.Count(e => e.Kind == RemediationEventKind.Remediating).Should().Be(1, "a clean exit is not restarted under on-failure");
    }

    [Fact]
    public async Task AServiceThatRanPastItsStartPeriod_IsRestartedAtOnce_WhileACrashRightAfterAStartWaitsItsBackoff()
    {
        var port = Path.Combine(_dir.Path, "port");
        var def = Load(_dir, $$"""
            rules:
              - name: svc
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"], start-period: 0s }
                backoff: { initial: 10s, factor: 2, max: 1m, jitter: 0 }
                restart-budget: { max: 10, within: 10m }
            """);
        _remediator = new RuleRemediator(def, [], _host, NullLoggerFactory.Instance, _time, _stopping.Token);
        _remediator.Activate();
        await Eventually.Until(() => File.Exists(port), what: "the service listening");

        async Task<DateTimeOffset> Crash()
        {
            var pid = _remediator.Supervisor!.Current!.Pid;
            var at = _time.GetUtcNow();
            var listening = File.ReadAllText(port);
            var exits = _host.Events.Count(e => e.Kind == RemediationEventKind.Exited);
            File.Delete(port);
            await Tell(listening, "crash");
            await Eventually.Until(() => _host.Events.Count(e => e.Kind == RemediationEventKind.Exited) > exits,
                what: "the exit seen", context: () => string.Join(", ", _host.Events.Select(e => $"{e.Name}#{e.Attempt} {e.When:HH:mm:ss} {e.Message}")));
            return at;
        }

        var first = await Crash();
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 1)).When.Should().Be(first, "the first attempt of an episode is immediate");
        await Eventually.Until(() => File.Exists(port), what: "the restarted service listening");

        // Crashing right after its start is a crash loop: the next start waits the backoff, and meanwhile the service
        // counts as being restarted (a process or memory probe of it is degraded, not failed).
        var second = await Crash();
        _remediator.Restarting.Should().BeTrue();
        _remediator.RunningProcess.Should().BeNull();
        _time.Advance(TimeSpan.FromSeconds(10));
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 2)).When.Should().Be(second + TimeSpan.FromSeconds(10));
        await Eventually.Until(() => File.Exists(port), what: "the restarted service listening");
        _remediator.Restarting.Should().BeFalse();
        _remediator.RunningProcess.Should().NotBeNull();

        // Running 11s (its start period, 0s, plus the 10s margin) and then crashing is not a crash loop: restarted at once,
        // not after the 20s the backoff would say.
        _time.Advance(TimeSpan.FromSeconds(11));
        var third = await Crash();
        (await _host.WaitFor(RemediationEventKind.Remediating, attempt: 3)).When.Should().Be(third);
        _host.State.Attempts.Should().HaveCount(3, "it still counts in the budget");
    }

    [Fact]
    public async Task AnExitWhileTheAttemptThatStartedItIsStillFinishing_IsRestarted_NotLost()
    {
        // The start was good (its start period passed) and the service dies before the attempt has finished: here,
        // deterministically, while the attempt publishes its outcome. That exit must lead to the next attempt, never
        // to a service left stopped with nobody to restart it.
        var def = Load(_dir, """
            rules:
              - name: svc
                supervise: { command: [/bin/sleep, "300"], start-period: 0s }
                backoff: { initial: 1s, factor: 1, max: 1s, jitter: 0 }
            """);
        _remediator = new RuleRemediator(def, [], _host, NullLoggerFactory.Instance, _time, _stopping.Token);
        _host.OnPublish = e =>
        {
            if (e is not { Kind: RemediationEventKind.Remediated, Attempt: 1 }) return;
            NativeProcess.Signal(_remediator.Supervisor!.Current!.Pid, NativeProcess.SigKill);
            SpinWait.SpinUntil(() => _host.Events.Count(x => x.Kind == RemediationEventKind.Exited) == 2, TimeSpan.FromSeconds(30)).Should().BeTrue("the exit was seen");
        };
        _remediator.Activate();
        await Eventually.Until(() => _remediator.Supervisor!.IsRunning, what: "the first start");
        NativeProcess.Signal(_remediator.Supervisor!.Current!.Pid, NativeProcess.SigKill);
        await _host.WaitFor(RemediationEventKind.Remediated, attempt: 1);
        _time.Advance(TimeSpan.FromSeconds(1));
        await _host.WaitFor(RemediationEventKind.Remediating, attempt: 2);
        await Eventually.Until(() => _remediator.Supervisor.IsRunning, what: "running again");
    }

    [Fact]
    public async Task MissingProgram_IsAClearRemediationFailure_NotACrash()
    {
        var def = Load(_dir, """
            rules:
              - name: svc
                supervise: { command: [/nonexistent/bot, --serve] }
                backoff: { initial: 1m, jitter: 0 }
            """);
        _remediator = new RuleRemediator(def, [], _host, NullLoggerFactory.Instance, _time, _stopping.Token);
        _remediator.Activate();
        var failed = await _host.WaitFor(RemediationEventKind.RemediationFailed, attempt: 1);
        failed.Message.Should().Be("cannot start '/nonexistent/bot': no such program (give a full path, or fix supervise.command)");
        _host.State.NextAttemptAt.Should().Be(_time.GetUtcNow() + TimeSpan.FromMinutes(1));
    }

    // The start period (1s) is a timer on the fake clock that the attempt sets once the process is started; on a busy
    // machine the test may see the service answer before that timer exists. Moving the clock until the attempt is
    // done (never more than needed: each step is the whole period) does not depend on that order.
    private async Task PassStartPeriodAsync(int attempt)
    {
        await Eventually.Until(() =>
        {
            if (_host.Events.Any(e => e.Kind == RemediationEventKind.Remediated && e.Attempt == attempt)) return true;
            _time.Advance(TimeSpan.FromSeconds(1));
            return false;
        }, what: $"attempt {attempt} through its start period");
    }

    /// <summary>Tells the test service to crash, exit0 or hang; it may exit before it answers.</summary>
    internal static async Task Tell(string port, string command)
    {
        using var http = new HttpClient();
        try { await http.PostAsync($"http://127.0.0.1:{port}/{command}", null); }
        catch (HttpRequestException) { }
    }

    private CheckRecord Check(bool ok) => new(ok ? ProbeStatus.Healthy : ProbeStatus.Unhealthy, ok ? "ok" : "down", _time.GetUtcNow(), TimeSpan.Zero);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_remediator is not null)
        {
            var last = _remediator.Supervisor?.Current;
            // The stop waits on the fake clock; the teardown must not: kill what is left after a real bound.
            try { await _remediator.DisposeAsync(stopService: true).AsTask().WaitAsync(TimeSpan.FromSeconds(15)); }
            catch (TimeoutException) { }
            if (last is not null && NativeProcess.IsAlive(last.Pid, last.StartTicks)) NativeProcess.Signal(last.Pid, NativeProcess.SigKill);
        }
        _stopping.Dispose();
        _dir.Dispose();
    }

    /// <summary>Stands in for the engine: keeps the remediation state and collects the events.</summary>
    internal sealed class TestHost : IRemediationHost
    {
        private readonly Lock _lock = new();
        public RemediationState State { get; private set; } = new();
        public ConcurrentQueue<RemediationEvent> Queue { get; } = new();
        public List<RemediationEvent> Events => [.. Queue];
        public HashSet<string> Down { get; } = [];

        public RuleState Rule(RuleStatus status) => new("svc", status, DateTimeOffset.UnixEpoch, Remediation: State);

        public RuleState? GetState(string rule) => Rule(RuleStatus.Healthy);

        public RemediationState UpdateRemediation(string rule, Func<RemediationState, RemediationState> update)
        {
            lock (_lock) return State = update(State);
        }

        /// <summary>Runs on the publishing thread after the event is queued (to act at an exact point of an attempt).</summary>
        public Action<RemediationEvent>? OnPublish { get; set; }

        public void Publish(EngineEvent e)
        {
            if (e is not RemediationEvent r) return;
            Queue.Enqueue(r);
            OnPublish?.Invoke(r);
        }

        public string? FirstDown(IReadOnlyList<string> rules) => rules.FirstOrDefault(Down.Contains);

        public void RequestCheck(string rule) { }

        public Task<RemediationEvent> WaitFor(RemediationEventKind kind, int attempt, DateTimeOffset? after = null)
            => Eventually.Until(() => Queue.FirstOrDefault(e => e.Kind == kind && e.Attempt == attempt && e.When >= (after ?? DateTimeOffset.MinValue)),
                e => e is not null, what: $"{kind} attempt {attempt}; events so far: {string.Join(", ", Queue.Select(e => $"{e.Name}#{e.Attempt}"))}")!;
    }
}
