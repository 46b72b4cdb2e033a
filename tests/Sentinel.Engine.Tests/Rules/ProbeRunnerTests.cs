using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Rules;

public sealed class ProbeRunnerTests
{
    private readonly FakeTimeProvider _time = new();

    private static RuleRuntime Runtime(IProbe probe, TimeSpan timeout, params string[] conditions)
    {
        var reg = new PluginTypeRegistration("test", PluginKind.Probe, probe.GetType(), typeof(object), null, "test", 1);
        var def = new RuleDefinition
        {
            Name = "r", Timeout = timeout, Probe = reg, ProbeOptions = new object(), FailureThreshold = 3, SuccessThreshold = 2,
            Fingerprint = "f", Every = TimeSpan.FromSeconds(1), Conditions = conditions.Select(Condition.Parse).ToList(),
        };
        return new RuleRuntime(def, probe);
    }

    // Found by the copytruncate log test under load: a check in flight at SIGTERM whose probe reports the cancellation
    // as a failure (as the http probe reports a cancelled request) raced the runner's own stop: when the probe's answer
    // won, the rule went DOWN on Sentinel's shutdown, opened an incident and was told. Run many times, since it is a race.
    [Fact]
    public async Task Run_ACheckCutShortByShutdown_IsNeverAResult_EvenWhenTheProbeCallsTheCancellationAFailure()
    {
        var recorded = 0;
        for (var i = 0; i < 200; i++)
        {
            var key = Guid.NewGuid().ToString("N");
            var runtime = Runtime(new SlowProbe(new SlowOptions { Delay = TimeSpan.FromHours(1), SwallowCancel = true, Key = key }), TimeSpan.FromSeconds(10));
            using var stopping = new CancellationTokenSource();
            var task = ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, stopping.Token);
            await Eventually.Until(() => SlowProbe.Started.ContainsKey(key));
            stopping.Cancel();
            try { await task.Within(); recorded++; }
            catch (OperationCanceledException) { }
        }
        recorded.Should().Be(0, "a check cut short by Sentinel's own stop says nothing about its target");
    }

    [Fact]
    public async Task Run_ProbeThatThrows_BecomesAFailedResultCarryingTheMessage()
    {
        var check = await ProbeRunner.RunAsync(Runtime(new ThrowingProbe(new ThrowingOptions { Message = "disk on fire" }), TimeSpan.FromSeconds(5)),
            _time, NullLogger.Instance, CancellationToken.None);
        check.Status.Should().Be(ProbeStatus.Unhealthy);
        check.Description.Should().Be("the probe failed with InvalidOperationException: disk on fire");
    }

    [Fact]
    public async Task Run_ProbeThatHonoursCancellation_TimesOutAtTheRuleTimeout()
    {
        var task = ProbeRunner.RunAsync(Runtime(new SlowProbe(new SlowOptions()), TimeSpan.FromSeconds(3)), _time, NullLogger.Instance, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(2.9));
        task.IsCompleted.Should().BeFalse();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        var check = await task;
        check.Status.Should().Be(ProbeStatus.Unhealthy);
        check.Description.Should().Be("timed out after 3s");
        check.Stuck.Should().BeFalse();
    }

    [Fact]
    public async Task Run_ProbeThatIgnoresCancellation_IsAbandonedAndMarkedStuck_AndLaterRunsAreSkipped()
    {
        var gate = new ManualResetEventSlim();
        var probe = new BlockingProbe(gate);
        var runtime = Runtime(probe, TimeSpan.FromSeconds(2));
        try
        {
            var task = ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(2) + ProbeRunner.AbandonGrace);
            var check = await task.Within();
            check.Stuck.Should().BeTrue();
            check.Description.Should().Be("timed out after 2s and ignored cancellation: the probe was abandoned (stuck)");

            // On a busy machine the abandoned probe may start only now: it must still be the run in flight, with a
            // cancelled token, so the next run is skipped rather than started beside it.
            await Eventually.Until(() => probe.Started == 1, what: "the abandoned probe running");
            _time.Advance(TimeSpan.FromSeconds(7));
            var next = await ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None).Within();
            next.Stuck.Should().BeTrue();
            next.Description.Should().StartWith("stuck: the check started 10s ago");
            probe.Started.Should().Be(1, "a stuck probe is not started a second time");
        }
        finally { gate.Set(); }
        await Eventually.Until(() => !runtime.CallFor(_time).Busy);
        var recovered = await ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None).Within();
        recovered.Status.Should().Be(ProbeStatus.Healthy);
    }

    [Fact]
    public async Task Run_Conditions_JudgeTheData_AndExplainEveryFailure()
    {
        var probe = new ScriptedProbe(new ScriptedOptions { Key = Guid.NewGuid().ToString(), Value = 42 });
        var check = await ProbeRunner.RunAsync(Runtime(probe, TimeSpan.FromSeconds(1), "value == 42", "value < 10", "runs > 5"), _time, NullLogger.Instance, CancellationToken.None);
        check.Status.Should().Be(ProbeStatus.Unhealthy);
        check.Description.Should().Be("value < 10 failed: 'value' is 42; runs > 5 failed: 'runs' is 1");

        var ok = await ProbeRunner.RunAsync(Runtime(probe, TimeSpan.FromSeconds(1), "value == 42"), _time, NullLogger.Instance, CancellationToken.None);
        ok.Status.Should().Be(ProbeStatus.Healthy);
        ok.Data!["runs"].Should().Be(2);
    }

    [Fact]
    public async Task Run_WhenStopping_CancelsAndThrows()
    {
        using var stop = new CancellationTokenSource();
        var task = ProbeRunner.RunAsync(Runtime(new SlowProbe(new SlowOptions()), TimeSpan.FromMinutes(1)), _time, NullLogger.Instance, stop.Token);
        stop.Cancel();
        await FluentActions.Awaiting(() => task).Should().ThrowAsync<OperationCanceledException>();
    }

    // A rule's probe call is used again check after check (one timer and one cancellation source a rule, not a check):
    // what one check did with them must not reach the next.
    [Fact]
    public async Task Run_AfterATimeout_TheNextCheckGetsATokenNotCancelled()
    {
        var probe = new TokenProbe();
        var runtime = Runtime(probe, TimeSpan.FromSeconds(3));
        probe.Wait = true;
        var first = ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(3));
        (await first.Within()).Description.Should().Be("timed out after 3s");
        probe.Wait = false;
        var next = await ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None).Within();
        next.Status.Should().Be(ProbeStatus.Healthy);
        probe.LastToken.IsCancellationRequested.Should().BeFalse();
        probe.LastToken.CanBeCanceled.Should().BeTrue("the next check can still time out");
    }

    [Fact]
    public async Task Run_TheTimeoutCountsFromEachChecksStart_NotFromAnEarlierChecks()
    {
        var probe = new TokenProbe();
        var runtime = Runtime(probe, TimeSpan.FromSeconds(3));
        (await ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None).Within()).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(2));
        probe.Wait = true;
        var second = ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None);
        await Eventually.Until(() => probe.Calls == 2);
        _time.Advance(TimeSpan.FromSeconds(1.5)); // 3.5 s after the first check's start, 1.5 s after this one's
        second.IsCompleted.Should().BeFalse();
        probe.LastToken.IsCancellationRequested.Should().BeFalse();
        _time.Advance(TimeSpan.FromSeconds(1.5));
        (await second.Within()).Description.Should().Be("timed out after 3s");
    }

    // A plugin that registers on its token and never unregisters must not pile its registrations up on one source for
    // the rule's lifetime: the source is renewed every so many checks.
    [Fact]
    public async Task Run_RegistrationsAProbeLeavesOnItsToken_DoNotPileUpAcrossChecks()
    {
        var probe = new TokenProbe { Leak = true };
        var runtime = Runtime(probe, TimeSpan.FromSeconds(3));
        for (var i = 0; i < 250; i++) await ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None).Within();
        probe.Wait = true;
        var timedOut = ProbeRunner.RunAsync(runtime, _time, NullLogger.Instance, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(3));
        (await timedOut.Within()).Description.Should().Be("timed out after 3s");
        await Eventually.Until(() => probe.Fired > 0);
        probe.Fired.Should().BeInRange(1, 101, "only the registrations made since the source was last renewed are on it");
    }

    [Fact]
    public async Task Run_TheProbeSeesItsCallersAsyncLocals()
    {
        var probe = new TokenProbe();
        TokenProbe.Ambient.Value = "from the caller";
        await ProbeRunner.RunAsync(Runtime(probe, TimeSpan.FromSeconds(3)), _time, NullLogger.Instance, CancellationToken.None).Within();
        probe.SeenAmbient.Should().Be("from the caller", "the execution context flows to the probe (as with Task.Run)");
    }

    private sealed class TokenProbe : IProbe
    {
        public static readonly AsyncLocal<string?> Ambient = new();
        private int _calls, _fired;
        public bool Wait { get; set; }
        public bool Leak { get; init; }
        public int Calls => Volatile.Read(ref _calls);
        public int Fired => Volatile.Read(ref _fired);
        public CancellationToken LastToken { get; private set; }
        public string? SeenAmbient { get; private set; }

        public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        {
            LastToken = cancellationToken;
            SeenAmbient = Ambient.Value;
            if (Leak) cancellationToken.Register(() => Interlocked.Increment(ref _fired));
            Interlocked.Increment(ref _calls);
            if (Wait) await Task.Delay(Timeout.Infinite, cancellationToken);
            return ProbeResult.Healthy();
        }
    }

    private sealed class BlockingProbe(ManualResetEventSlim gate) : IProbe
    {
        private int _started;
        public int Started => Volatile.Read(ref _started);

        public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            gate.Wait();
            return ValueTask.FromResult(ProbeResult.Healthy("unblocked"));
        }
    }
}
