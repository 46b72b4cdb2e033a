using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.Tests.Heartbeat;

public sealed class HeartbeatSenderTests
{
    // A target whose start ping hangs until released (a slow server, or one being retried), recording when each ping
    // begins and whether a success began while the start was still out.
    private sealed class SlowStartTarget : IAction
    {
        public TaskCompletionSource ReleaseStart { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public System.Collections.Concurrent.ConcurrentQueue<string> Delivered { get; } = new();
        public volatile bool SuccessBeganDuringStart;
        public int SuccessesBegun;
        private volatile bool _startOut;

        public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
        {
            if (context.Event == "start")
            {
                _startOut = true;
                await ReleaseStart.Task.WaitAsync(cancellationToken);
                _startOut = false;
            }
            else
            {
                Interlocked.Increment(ref SuccessesBegun);
                if (_startOut) SuccessBeganDuringStart = true;
            }
            Delivered.Enqueue(context.Event);
        }
    }

    private static T Tick<T>(FakeTimeProvider time, T value)
    {
        time.Advance(TimeSpan.FromSeconds(1));
        return value;
    }

    [Fact]
    public async Task ASuccess_NeverOvertakesTheStartItPairsWith_AndSuccessesDueMeanwhileGoOutAsOne()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 8, 0, 0, TimeSpan.Zero));
        var target = new SlowStartTarget();
        var every = TimeSpan.FromSeconds(5); // four of them due within the start attempt's 30 s timeout
        await using var sender = new HeartbeatSender(new HeartbeatDefinition(every, []), [target], () => (true, "1 rules, all healthy"), time, NullLogger.Instance);
        sender.Start();

        // Four success pings come due while the start is still out (the clock moves a second at each look, so the loop
        // is never waiting on a delay made after the clock moved).
        await Eventually.Until(() => Tick(time, sender.Sent), n => n >= 4, what: "four success pings made");
        await Eventually.Until(() => target.SuccessesBegun > 0 || sender.Waiting > 0, ok => ok, what: "the first success either sent or waiting");
        target.SuccessBeganDuringStart.Should().BeFalse("a success must wait for the start it pairs with");

        target.ReleaseStart.SetResult();

        await Eventually.Until(() => target.Delivered.Count, n => n >= 2, what: "the start and one success delivered");
        await Eventually.Until(() => sender.Waiting, n => n == 0, what: "nothing left waiting");
        target.Delivered.Should().Equal(["start", "success"], "the successes due while the start was out go out as one, after it");
        target.SuccessBeganDuringStart.Should().BeFalse();

        await Eventually.Until(() => Tick(time, target.Delivered.Count), n => n == 3, what: "the next success goes out when due");
        target.Delivered.Last().Should().Be("success");
    }
}
