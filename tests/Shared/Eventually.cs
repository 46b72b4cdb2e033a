using System.Runtime.CompilerServices;

namespace Sentinel.Tests;

/// <summary>
/// The one way tests await what real components (a scheduler, a process, a file watcher, a server) bring about: the
/// condition is polled, never assumed after a fixed sleep, and a timeout says what was awaited and what was last seen.
/// The limits are generous on purpose: the suite must pass while other programs keep the machine's cores busy, and a
/// condition that holds returns at once however long its limit.
/// </summary>
public static class Eventually
{
    /// <summary>The limit when a test names none.</summary>
    public static TimeSpan DefaultLimit { get; } = TimeSpan.FromSeconds(60);

    // Polled at once, then after 20 ms, growing by half at each poll up to 200 ms, and never sooner than the probe itself
    // took: most waits are for seconds-long events, and a probe that asks a process (an HTTP status, a CLI run) costs
    // CPU on both sides (polled every 20 ms throughout, the Host tests took 227 s of CPU; so, 203 s).
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(200);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Next(TimeSpan poll) => TimeSpan.FromTicks(Math.Min(LongestPoll.Ticks, poll.Ticks * 3 / 2));

    /// <summary>Polls <paramref name="probe"/> until <paramref name="done"/> holds for its value, and returns that value.</summary>
    /// <param name="context">What to add to the timeout's message (a process's output, say).</param>
    public static Task<T> Until<T>(Func<T?> probe, Func<T, bool> done, TimeSpan? timeout = null, [CallerArgumentExpression(nameof(done))] string? what = null, Func<string>? context = null)
        => Until(() => Task.FromResult(probe()), done, timeout, what, context);

    /// <inheritdoc cref="Until{T}(Func{T}, Func{T, bool}, TimeSpan?, string?, Func{string}?)"/>
    public static async Task<T> Until<T>(Func<Task<T?>> probe, Func<T, bool> done, TimeSpan? timeout = null, [CallerArgumentExpression(nameof(done))] string? what = null, Func<string>? context = null)
    {
        var limit = timeout ?? DefaultLimit;
        var started = System.Diagnostics.Stopwatch.StartNew();
        T? last = default;
        var poll = FirstPoll;
        while (true)
        {
            var asked = started.Elapsed;
            last = await probe();
            if (last is not null && done(last)) return last;
            if (started.Elapsed > limit) throw Timeout(limit, what, $"last value: {last}", context);
            await Task.Delay(Max(poll, started.Elapsed - asked));
            poll = Next(poll);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds.</summary>
    public static Task Until(Func<bool> condition, TimeSpan? timeout = null, [CallerArgumentExpression(nameof(condition))] string? what = null, Func<string>? context = null)
        => Until(() => Task.FromResult(condition()), timeout, what, context);

    /// <inheritdoc cref="Until(Func{bool}, TimeSpan?, string?, Func{string}?)"/>
    public static async Task Until(Func<Task<bool>> condition, TimeSpan? timeout = null, [CallerArgumentExpression(nameof(condition))] string? what = null, Func<string>? context = null)
    {
        var limit = timeout ?? DefaultLimit;
        var started = System.Diagnostics.Stopwatch.StartNew();
        var poll = FirstPoll;
        while (true)
        {
            var asked = started.Elapsed;
            if (await condition()) return;
            if (started.Elapsed > limit) throw Timeout(limit, what, null, context);
            await Task.Delay(Max(poll, started.Elapsed - asked));
            poll = Next(poll);
        }
    }

    /// <summary>Polls <paramref name="probe"/> until it returns a value (not null), and returns it.</summary>
    public static Task<T> Value<T>(Func<T?> probe, TimeSpan? timeout = null, [CallerArgumentExpression(nameof(probe))] string? what = null, Func<string>? context = null) where T : class
        => Until(probe, _ => true, timeout, what, context);

    /// <summary>Awaits a task that must finish; a task that does not within the limit fails the test instead of hanging it.</summary>
    public static async Task<T> Within<T>(this Task<T> task, TimeSpan? timeout = null, string? what = null)
    {
        try { return await task.WaitAsync(timeout ?? DefaultLimit); }
        catch (TimeoutException) when (!task.IsCompleted) { throw Timeout(timeout ?? DefaultLimit, what ?? "the task to finish", null, null); }
    }

    /// <inheritdoc cref="Within{T}(Task{T}, TimeSpan?, string?)"/>
    public static async Task Within(this Task task, TimeSpan? timeout = null, string? what = null)
    {
        try { await task.WaitAsync(timeout ?? DefaultLimit); }
        catch (TimeoutException) when (!task.IsCompleted) { throw Timeout(timeout ?? DefaultLimit, what ?? "the task to finish", null, null); }
    }

    private static TimeoutException Timeout(TimeSpan limit, string? what, string? last, Func<string>? context)
        => new($"not reached within {limit.TotalSeconds:0.#}s: {what ?? "condition"}" + (last is null ? "" : "; " + last)
            + (context is null ? "" : "\n" + context()));
}
