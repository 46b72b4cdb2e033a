namespace Sentinel.Engine.Isolation;

/// <summary>
/// Starts plugin code on the thread pool, apart from its caller, so that a plugin that blocks its thread or ignores its
/// token costs only its own task. The cancellation sources it is given live until that code has finished, however
/// long after the caller gave up on it: on a busy machine the pool may start it only after its deadline, and it must
/// then find a cancelled token, not a disposed one (which would fault it at once and make an abandoned run look done).
/// </summary>
internal static class Isolated
{
    /// <summary>
    /// Runs <paramref name="work"/> with <paramref name="token"/>'s token; disposes both sources once it ends. (Probes,
    /// run at every check, have a reusable way of their own: Rules/ProbeCall.)
    /// </summary>
    // One state machine where Task.Run, its closure, its unwrapping and a continuation were five objects a run: the
    // caller has the task at once, and the work starts on the thread pool (Task.Yield queues it there).
    public static Task Start<TContext>(Func<TContext, CancellationToken, ValueTask> work, TContext context,
        CancellationTokenSource owned, CancellationTokenSource token)
        => Apart(work, context, token.Token, owned, token);

    // The token is taken before the work starts: the caller may have given up and disposed the sources' handles by then.
    private static async Task Apart<TContext>(Func<TContext, CancellationToken, ValueTask> work, TContext context, CancellationToken ct,
        CancellationTokenSource owned, CancellationTokenSource token)
    {
        try
        {
            // Task.Yield queues this state machine itself (no allocation) when there is no context to post to.
            if (SynchronizationContext.Current is null && TaskScheduler.Current == TaskScheduler.Default) await Task.Yield();
            else await PoolYield.Instance;
            await work(context, ct).ConfigureAwait(false);
        }
        finally
        {
            token.Dispose();
            owned.Dispose();
        }
    }

    // Task.Yield, but always to the thread pool: Task.Yield would post to the caller's SynchronizationContext or
    // TaskScheduler when it has one, and so not run the plugin apart from it.
    private readonly struct PoolYield : System.Runtime.CompilerServices.ICriticalNotifyCompletion
    {
        public static PoolYield Instance => default;
        public PoolYield GetAwaiter() => this;
        public bool IsCompleted => false;
        public void GetResult() { }
        public void OnCompleted(Action continuation) => ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);
        public void UnsafeOnCompleted(Action continuation) => ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
    }
}
