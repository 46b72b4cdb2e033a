using System.Threading.RateLimiting;

namespace Sentinel.Engine.Heartbeat;

/// <summary>What Sentinel's ping endpoint heard for one check.</summary>
internal sealed record PingRecord(
    DateTimeOffset? LastSuccess = null, DateTimeOffset? LastStart = null, string? StartRid = null, DateTimeOffset? LastFail = null,
    int? LastExitCode = null, string? LastBody = null, TimeSpan? LastDuration = null, long Pings = 0);

/// <summary>
/// The inbound side of the dead-man's switch: checks (configured by <c>heartbeat</c> rules, so keys are never
/// guessed into existence) and what their pings said. Pings are rate-limited per check and in total.
/// </summary>
internal sealed class PingRegistry : IDisposable
{
    /// <summary>Bodies are kept up to this many bytes (the Ping-Body-Limit header says so, as self-hosted healthchecks does).</summary>
    public const int BodyLimit = 10_000;

    /// <summary>Requests with a larger body are refused (413).</summary>
    public const int MaxRequestBody = 100_000;

    private readonly Dictionary<string, PingRecord> _checks = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    // Made at the first ping: a partitioned limiter wakes every 100 ms for as long as it lives (two of them were 20
    // wake-ups a second of an engine that is never pinged).
    private readonly Lazy<PartitionedRateLimiter<string>> _limiter = new(() => PartitionedRateLimiter.CreateChained(
        PartitionedRateLimiter.Create<string, string>(_ => RateLimitPartition.GetTokenBucketLimiter("all",
            _ => new TokenBucketRateLimiterOptions { TokenLimit = 200, TokensPerPeriod = 100, ReplenishmentPeriod = TimeSpan.FromSeconds(1), QueueLimit = 0 })),
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key,
            _ => new TokenBucketRateLimiterOptions { TokenLimit = 20, TokensPerPeriod = 5, ReplenishmentPeriod = TimeSpan.FromSeconds(1), QueueLimit = 0 }))));

    public PingRegistry(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>Whether the rate limiter (and its 100 ms timers) exists yet: not before the first ping.</summary>
    internal bool IsLimiting => _limiter.IsValueCreated;

    /// <summary>Makes a check known (a heartbeat rule's key); pings for unknown keys get 404.</summary>
    public void Register(string key)
    {
        lock (_lock) _checks.TryAdd(key, new PingRecord());
    }

    public bool IsKnown(string key)
    {
        lock (_lock) return _checks.ContainsKey(key);
    }

    public PingRecord? Get(string key)
    {
        lock (_lock) return _checks.GetValueOrDefault(key);
    }

    /// <summary>False when the check (or Sentinel as a whole) is pinged faster than allowed.</summary>
    public bool TryAcquire(string key)
    {
        using var lease = _limiter.Value.AttemptAcquire(key);
        return lease.IsAcquired;
    }

    /// <summary>Records a ping: kind is success, start, fail, log, or an exit status 0-255.</summary>
    public void Record(string key, string kind, string? rid, string body)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_checks.TryGetValue(key, out var r)) return;
            r = r with { Pings = r.Pings + 1, LastBody = body.Length > 0 ? body : r.LastBody };
            TimeSpan? Duration() => r.LastStart is { } s && (rid is null || rid == r.StartRid) ? now - s : null;
            r = kind switch
            {
                "start" => r with { LastStart = now, StartRid = rid },
                "log" => r,
                "fail" => r with { LastFail = now, LastDuration = Duration() ?? r.LastDuration, LastStart = null },
                "success" => r with { LastSuccess = now, LastExitCode = 0, LastDuration = Duration() ?? r.LastDuration, LastStart = null },
                _ when int.TryParse(kind, out var code) => code == 0
                    ? r with { LastSuccess = now, LastExitCode = 0, LastDuration = Duration() ?? r.LastDuration, LastStart = null }
                    : r with { LastFail = now, LastExitCode = code, LastDuration = Duration() ?? r.LastDuration, LastStart = null },
                _ => r,
            };
            _checks[key] = r;
        }
        if (kind != "log") Pinged?.Invoke(key);
    }

    /// <summary>Raised (outside the lock) after a ping that changes a check's judgement: success, start, fail or an exit status.
    /// The engine checks the check's rules at once, so a <c>/fail</c> takes effect when it arrives, not at the next check.</summary>
    public event Action<string>? Pinged;

    public void Dispose()
    {
        if (_limiter.IsValueCreated) _limiter.Value.Dispose();
    }
}
