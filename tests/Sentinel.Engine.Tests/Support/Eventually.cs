namespace Sentinel.Engine.Tests.Support;

/// <summary>Awaits a condition that real components (a scheduler, a file watcher) bring about.</summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<T?> probe, Func<T, bool> done, TimeSpan? timeout = null, string? what = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        var start = DateTime.UtcNow;
        T? last = default;
        while (DateTime.UtcNow - start < limit)
        {
            last = probe();
            if (last is not null && done(last)) return last;
            await Task.Delay(20);
        }
        throw new TimeoutException($"not reached within {limit.TotalSeconds}s: {what ?? "condition"}; last value: {last}");
    }

    public static async Task<T> Until<T>(Func<Task<T?>> probe, Func<T, bool> done, TimeSpan? timeout = null, string? what = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        var start = DateTime.UtcNow;
        T? last = default;
        while (DateTime.UtcNow - start < limit)
        {
            last = await probe();
            if (last is not null && done(last)) return last;
            await Task.Delay(20);
        }
        throw new TimeoutException($"not reached within {limit.TotalSeconds}s: {what ?? "condition"}; last value: {last}");
    }

    public static async Task Until(Func<bool> condition, TimeSpan? timeout = null, string? what = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        var start = DateTime.UtcNow;
        while (!condition())
        {
            if (DateTime.UtcNow - start > limit) throw new TimeoutException($"not reached within {limit.TotalSeconds}s: {what ?? "condition"}");
            await Task.Delay(20);
        }
    }
}
