using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.Tests.Heartbeat;

public sealed class PingRegistryTests
{
    // A partitioned rate limiter wakes every 100 ms while it lives: an engine that is never pinged must not pay for one
    // (two were 20 wake-ups a second, a third of the idle engine's CPU).
    [Fact]
    public void TheRateLimiter_IsMadeAtTheFirstPing_AndThenLimits()
    {
        using var pings = new PingRegistry();
        pings.Register("job");
        pings.IsKnown("job").Should().BeTrue();
        pings.IsLimiting.Should().BeFalse("nothing has been pinged yet");

        var allowed = Enumerable.Range(0, 100).Count(_ => pings.TryAcquire("job"));

        pings.IsLimiting.Should().BeTrue();
        allowed.Should().Be(20, "one check may burst 20 pings, then 5 a second");
    }
}
