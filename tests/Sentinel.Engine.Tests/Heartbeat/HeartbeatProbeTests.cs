using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.BuiltIn;
using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.Tests.Heartbeat;

public sealed class HeartbeatProbeTests
{
    private const string Key = "7e1c0c33-4c0d-4a8b-a1a4-3f1f4a9b5a21";
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero));

    private readonly MemoryProbeState _state = new();

    private (HeartbeatProbe Probe, PingRegistry Pings) Create(TimeSpan? period = null, string? cron = null, TimeSpan? grace = null,
        NeverPinged neverPinged = NeverPinged.Alert)
    {
        var pings = new PingRegistry(_time);
        var probe = new HeartbeatProbe(new HeartbeatProbeOptions { Key = Key, Period = period, Cron = cron, Grace = grace ?? TimeSpan.FromMinutes(1), NeverPinged = neverPinged },
            pings, _time);
        return (probe, pings);
    }

    private async Task<ProbeResult> Check(HeartbeatProbe probe)
        => await probe.CheckAsync(new ProbeContext { RuleName = "job", TimeProvider = _time, Logger = NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5), State = _state }, default);

    [Fact]
    public async Task Period_IsHealthyUntilPeriodPlusGrace_ThenDown_AndAPingHeals()
    {
        var (probe, pings) = Create(period: TimeSpan.FromMinutes(5));
        await pings.RecordAsync(Key, "success", null, "");
        _time.Advance(TimeSpan.FromMinutes(6));
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy, "5m period + 1m grace not yet passed");
        _time.Advance(TimeSpan.FromSeconds(1));
        var late = await Check(probe);
        late.Status.Should().Be(ProbeStatus.Unhealthy);
        late.Description.Should().Be("the last ping was 6m1s ago; the next was expected by 2026-11-22 02:05:00Z (+1m grace)");
        await pings.RecordAsync(Key, "success", null, "");
        (await Check(probe)).Description.Should().Be("last ping 0s ago");
    }

    [Fact]
    public async Task Cron_ExpectsAPingAfterEachTime_PlusGrace()
    {
        var (probe, pings) = Create(cron: "0 3 * * *", grace: TimeSpan.FromMinutes(30));
        _time.Advance(TimeSpan.FromHours(1.5)); // 03:30, the 03:00 run's grace just ended
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(1));
        (await Check(probe)).Description.Should().StartWith("never pinged: the rule was created 1h30m1s ago, and a ping was expected by 2026-11-22 03:00:00Z");
        await pings.RecordAsync(Key, "success", null, "");
        _time.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(2)); // 03:29:59 next day: the next run's grace ends at 03:30
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(2));
        (await Check(probe)).Status.Should().Be(ProbeStatus.Unhealthy);
    }

    [Fact]
    public async Task AStartNotFinishedWithinGrace_IsDown_AndTheRunIsMeasured()
    {
        var (probe, pings) = Create(period: TimeSpan.FromHours(1), grace: TimeSpan.FromMinutes(2));
        await pings.RecordAsync(Key, "start", "r1", "");
        _time.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));
        (await Check(probe)).Description.Should().Be("started 2m1s ago and not finished within the grace of 2m");
        await pings.RecordAsync(Key, "0", "r1", "");
        var done = await Check(probe);
        done.Status.Should().Be(ProbeStatus.Healthy);
        done.Data!["duration"].Should().Be(TimeSpan.FromSeconds(121));
        await pings.RecordAsync(Key, "fail", null, "disk full");
        (await Check(probe)).Description.Should().Be("the job reported failure 0s ago: disk full");
    }

    [Fact]
    public async Task ARestartedSentinel_KeepsTheClockOfACheckThatStoppedPinging_AndItsFailure()
    {
        var (probe, pings) = Create(period: TimeSpan.FromMinutes(5));
        await pings.RecordAsync(Key, "success", null, "");
        await Check(probe);
        _time.Advance(TimeSpan.FromMinutes(4));
        // Sentinel restarts: pings heard so far are gone from memory, the probe state is restored.
        (probe, pings) = Create(period: TimeSpan.FromMinutes(5));
        _time.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));
        (await Check(probe)).Description.Should().StartWith("the last ping was 6m1s ago", "a restart must not restart the 5m clock");

        await pings.RecordAsync(Key, "success", null, "");
        await pings.RecordAsync(Key, "fail", null, "exit 1");
        await Check(probe);
        (probe, _) = Create(period: TimeSpan.FromMinutes(5));
        (await Check(probe)).Description.Should().StartWith("the job reported failure 0s ago", "a reported failure stands until the next success, restart or not");
    }

    [Fact]
    public async Task NeverPinged_AlertsAPeriodPlusGraceAfterCreation_EvenAcrossRestarts_OrWaitsWhenAskedTo()
    {
        var (probe, _) = Create(period: TimeSpan.FromMinutes(10));
        (await Check(probe)).Description.Should().Be("new: waiting for the first ping, expected by 2026-11-22 02:10:00Z (+1m grace)");
        _time.Advance(TimeSpan.FromMinutes(8));
        (probe, _) = Create(period: TimeSpan.FromMinutes(10)); // restarted 8m after the rule was created
        _time.Advance(TimeSpan.FromMinutes(3) + TimeSpan.FromSeconds(1));
        var late = await Check(probe);
        late.Status.Should().Be(ProbeStatus.Unhealthy);
        late.Description.Should().Be("never pinged: the rule was created 11m1s ago, and a ping was expected by 2026-11-22 02:10:00Z (+1m grace)");

        var (waiting, pings) = Create(period: TimeSpan.FromMinutes(10), neverPinged: NeverPinged.Wait);
        _time.Advance(TimeSpan.FromDays(3));
        (await Check(waiting)).Description.Should().StartWith("new: never pinged since the rule was created");
        await pings.RecordAsync(Key, "success", null, "");
        _time.Advance(TimeSpan.FromMinutes(11) + TimeSpan.FromSeconds(1));
        (await Check(waiting)).Status.Should().Be(ProbeStatus.Unhealthy, "after the first ping, a late one is down as usual");
    }
}
