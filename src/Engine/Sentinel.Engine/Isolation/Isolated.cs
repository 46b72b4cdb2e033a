namespace Sentinel.Engine.Isolation;

/// <summary>
/// Starts plugin code on the thread pool, apart from its caller, so that a plugin that blocks its thread or ignores its
/// token costs only its own task. The cancellation sources it is given live until that code has finished, however
/// long after the caller gave up on it: on a busy machine the pool may start it only after its deadline, and it must
/// then find a cancelled token, not a disposed one (which would fault it at once and make an abandoned run look done).
/// </summary>
internal static class Isolated
{
    /// <summary>Runs <paramref name="work"/> with <paramref name="token"/>'s token; disposes both sources once it ends.</summary>
    public static Task<T> Start<TContext, T>(Func<TContext, CancellationToken, ValueTask<T>> work, TContext context,
        CancellationTokenSource owned, CancellationTokenSource token)
    {
        var ct = token.Token;
        var task = Task.Run(async () => await work(context, ct).ConfigureAwait(false), CancellationToken.None);
        DisposeWhenDone(task, owned, token);
        return task;
    }

    /// <inheritdoc cref="Start{TContext, T}"/>
    public static Task Start<TContext>(Func<TContext, CancellationToken, ValueTask> work, TContext context,
        CancellationTokenSource owned, CancellationTokenSource token)
    {
        var ct = token.Token;
        var task = Task.Run(async () => await work(context, ct).ConfigureAwait(false), CancellationToken.None);
        DisposeWhenDone(task, owned, token);
        return task;
    }

    private static void DisposeWhenDone(Task task, CancellationTokenSource owned, CancellationTokenSource token)
        => task.ContinueWith(static (t, state) =>
        {
            _ = t.Exception; // observed: an abandoned run's failure has nobody left to report to
            var (a, b) = ((CancellationTokenSource, CancellationTokenSource))state!;
            b.Dispose();
            a.Dispose();
        }, (owned, token), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}
