using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.Tests.Heartbeat;

public sealed class HeartbeatProbeTests
{
    private const string Key = "7e1c0c33-4c0d-4a8b-a1a4-3f1f4a9b5a21";
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero));

    private (HeartbeatProbe Probe, PingRegistry Pings) Create(TimeSpan? period = null, string? cron = null, TimeSpan? grace = null)
    {
        var pings = new PingRegistry(_time);
        var probe = new HeartbeatProbe(new HeartbeatProbeOptions { Key = Key, Period = period, Cron = cron, Grace = grace ?? TimeSpan.FromMinutes(1) }, pings, _time);
        return (probe, pings);
    }

    private async Task<ProbeResult> Check(HeartbeatProbe probe)
        => await probe.CheckAsync(new ProbeContext { RuleName = "job", TimeProvider = _time, Logger = NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5) }, default);

    [Fact]
    public async Task Period_IsHealthyUntilPeriodPlusGrace_ThenDown_AndAPingHeals()
    {
        var (probe, pings) = Create(period: TimeSpan.FromMinutes(5));
        pings.Record(Key, "success", null, "");
        _time.Advance(TimeSpan.FromMinutes(6));
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy, "5m period + 1m grace not yet passed");
        _time.Advance(TimeSpan.FromSeconds(1));
        var late = await Check(probe);
        late.Status.Should().Be(ProbeStatus.Unhealthy);
        late.Description.Should().Be("the last ping was 6m1s ago; the next was expected by 2026-11-22 02:05:00Z (+1m grace)");
        pings.Record(Key, "success", null, "");
        (await Check(probe)).Description.Should().Be("last ping 0s ago");
    }

    [Fact]
    public async Task Cron_ExpectsAPingAfterEachTime_PlusGrace()
    {
        var (probe, pings) = Create(cron: "0 3 * * *", grace: TimeSpan.FromMinutes(30));
        _time.Advance(TimeSpan.FromHours(1.5)); // 03:30, the 03:00 run's grace just ended
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(1));
        (await Check(probe)).Description.Should().StartWith("no ping yet: one was expected by 2026-11-22 03:00:00Z");
        pings.Record(Key, "success", null, "");
        _time.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(2)); // 03:29:59 next day: the next run's grace ends at 03:30
        (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(2));
        (await Check(probe)).Status.Should().Be(ProbeStatus.Unhealthy);
    }

    [Fact]
    public async Task AStartNotFinishedWithinGrace_IsDown_AndTheRunIsMeasured()
    {
        var (probe, pings) = Create(period: TimeSpan.FromHours(1), grace: TimeSpan.FromMinutes(2));
        pings.Record(Key, "start", "r1", "");
        _time.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));
        (await Check(probe)).Description.Should().Be("started 2m1s ago and not finished within the grace of 2m");
        pings.Record(Key, "0", "r1", "");
        var done = await Check(probe);
        done.Status.Should().Be(ProbeStatus.Healthy);
        done.Data!["duration"].Should().Be(TimeSpan.FromSeconds(121));
        pings.Record(Key, "fail", null, "disk full");
        (await Check(probe)).Description.Should().Be("the job reported failure 0s ago: disk full");
    }
}
