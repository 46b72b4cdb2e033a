namespace Sentinel.Engine.Rules;

/// <summary>
/// Lets one run of a rule in at a time, without a lock: entering and leaving are one interlocked operation each (a
/// semaphore per rule took a monitor twice a check). <see cref="CloseAsync"/> takes it for good once the run in
/// progress (if any) has left, for a runtime being retired.
/// </summary>
internal sealed class RunGate
{
    private int _held;
    private TaskCompletionSource? _left;

    /// <summary>True if no run was in; the caller must <see cref="Exit"/>.</summary>
    public bool TryEnter() => Interlocked.CompareExchange(ref _held, 1, 0) == 0;

    public void Exit()
    {
        Volatile.Write(ref _held, 0);
        Interlocked.Exchange(ref _left, null)?.TrySetResult();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the run in progress to leave, then keeps every later one out.</summary>
    public async Task<bool> CloseAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!TryEnter())
        {
            var left = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _left, left);
            if (TryEnter()) return true; // left between the first try and the waiter's arrival
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero) return false;
            try { await left.Task.WaitAsync(remaining); }
            catch (TimeoutException) { return TryEnter(); }
        }
        return true;
    }
}
