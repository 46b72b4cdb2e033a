namespace Sentinel.Engine.State;

/// <summary>Runs a loop on a background thread of its own (disk work must not take thread-pool threads from checks).</summary>
internal static class DedicatedThread
{
    /// <summary>Starts <paramref name="loop"/>; the task completes when it returns.</summary>
    public static Task Start(string name, Action loop)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { loop(); }
            finally { done.SetResult(); }
        }) { IsBackground = true, Name = name }.Start();
        return done.Task;
    }
}
