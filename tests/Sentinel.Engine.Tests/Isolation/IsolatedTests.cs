using Sentinel.Engine.Isolation;

namespace Sentinel.Engine.Tests.Isolation;

public sealed class IsolatedTests
{
    [Fact]
    public async Task Work_ThatStartsAfterItsCallerDisposedTheSources_StillGetsItsCancelledToken()
    {
        // A caller that gave up (a probe past its timeout) leaves; on a busy machine the pool starts the work only then.
        // The token must have been taken before: reading it from a disposed source would fault the work at once.
        var source = new CancellationTokenSource();
        await source.CancelAsync();
        var cancelled = false;
        var task = Isolated.Start((string _, CancellationToken ct) =>
        {
            cancelled = ct.IsCancellationRequested;
            return ValueTask.CompletedTask;
        }, "context", source, source);
        source.Dispose();
        await task.Within();
        cancelled.Should().BeTrue();
    }

    [Fact]
    public async Task Sources_AreDisposedOnlyOnceTheWorkHasEnded_HoweverLongAfterItsCallerLeft()
    {
        using var gate = new SemaphoreSlim(0);
        var owned = new CancellationTokenSource();
        var token = CancellationTokenSource.CreateLinkedTokenSource(owned.Token);
        var cancelled = false;
        var task = Isolated.Start(async (string _, CancellationToken ct) =>
        {
            await gate.WaitAsync(CancellationToken.None); // ignores its token, as a misbehaving plugin does
            using var registration = ct.Register(() => { });
            cancelled = ct.IsCancellationRequested;
        }, "context", owned, token);
        await owned.CancelAsync();
        gate.Release();
        await task.Within();
        cancelled.Should().BeTrue();
        await Eventually.Until(() => IsDisposed(owned) && IsDisposed(token), what: "both sources disposed after the work ended");
    }

    private static bool IsDisposed(CancellationTokenSource source)
    {
        try { _ = source.Token; return false; }
        catch (ObjectDisposedException) { return true; }
    }
}
