using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Tests.Rules;

/// <summary>A rule's runs are let in one at a time; a retired runtime's gate closes once its run has left.</summary>
public sealed class RunGateTests
{
    [Fact]
    public void OneRunAtATime()
    {
        var gate = new RunGate();
        gate.TryEnter().Should().BeTrue();
        gate.TryEnter().Should().BeFalse("a run is in");
        gate.Exit();
        gate.TryEnter().Should().BeTrue();
    }

    [Fact]
    public async Task Close_WaitsForTheRunInProgress_ThenKeepsEveryLaterRunOut()
    {
        var gate = new RunGate();
        gate.TryEnter().Should().BeTrue();
        var closing = gate.CloseAsync(TimeSpan.FromMinutes(1));
        closing.IsCompleted.Should().BeFalse("the run is still in");
        gate.Exit();
        (await closing).Should().BeTrue();
        gate.TryEnter().Should().BeFalse("closed for good");
    }

    [Fact]
    public async Task Close_GivesUpAfterItsTimeout_WhenTheRunNeverLeaves()
    {
        var gate = new RunGate();
        gate.TryEnter().Should().BeTrue();
        (await gate.CloseAsync(TimeSpan.FromMilliseconds(50))).Should().BeFalse();
    }

    [Fact]
    public async Task ManyRunsRacingACloser_NeverTwoInAtOnce()
    {
        var gate = new RunGate();
        var inside = 0;
        var overlap = 0;
        var runners = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                if (!gate.TryEnter()) continue;
                if (Interlocked.Increment(ref inside) > 1) Interlocked.Increment(ref overlap);
                Interlocked.Decrement(ref inside);
                gate.Exit();
            }
        })).ToArray();
        var closed = await gate.CloseAsync(TimeSpan.FromMinutes(1));
        await Task.WhenAll(runners);
        closed.Should().BeTrue();
        overlap.Should().Be(0);
        gate.TryEnter().Should().BeFalse();
    }
}
