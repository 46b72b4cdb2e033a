using System.Threading.RateLimiting;

namespace Sentinel.Engine.Heartbeat;

/// <summary>How a ping was taken.</summary>
internal enum PingOutcome
{
    /// <summary>Recorded where every node that judges it sees it.</summary>
    Recorded,
    /// <summary>Recorded in this engine's memory, which judges it, but not in the store (a restart would forget it).</summary>
    RecordedHereOnly,
    /// <summary>Not recorded: the cluster's database could not be written, so the node that runs its rule would not see it.</summary>
    NotRecorded,
}

/// <summary>
/// The inbound side of the dead-man's switch: checks (configured by <c>heartbeat</c> rules, so keys are never
/// guessed into existence) and what their pings said, kept in the state store (<see cref="IPingStore"/>).
/// Pings are rate-limited per check and in total. In a cluster the store is shared: a ping is recorded in the
/// database before it is answered, and what other nodes heard is merged in at each check-in (<see cref="Merge"/>).
/// </summary>
internal sealed class PingRegistry : IDisposable
{
    /// <summary>Bodies are kept up to this many bytes (the Ping-Body-Limit header says so, as self-hosted healthchecks does).</summary>
    public const int BodyLimit = 10_000;

    /// <summary>Requests with a larger body are refused (413).</summary>
    public const int MaxRequestBody = 100_000;

    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PingRecord> _records = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private IPingStore? _store;
    private bool _shared;
    private Action<Exception?>? _written;
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

    /// <summary>
    /// Keeps the records in <paramref name="store"/> from now on, starting from what it holds. <paramref name="shared"/>:
    /// other nodes judge these pings too, so one the store cannot take is refused (the pinger tries again) rather
    /// than heard by this node alone; otherwise it is still heard here. <paramref name="written"/> is told of each
    /// write: null when it worked, else what failed.
    /// </summary>
    public async Task UseStoreAsync(IPingStore store, bool shared, Action<Exception?>? written, CancellationToken cancellationToken)
    {
        var stored = await store.LoadPingsAsync(cancellationToken);
        lock (_lock)
        {
            foreach (var (key, record) in stored) _records.TryAdd(key, record);
            (_store, _shared, _written) = (store, shared, written);
        }
    }

    /// <summary>Makes a check known (a heartbeat rule's key); pings for unknown keys get 404.</summary>
    public void Register(string key)
    {
        lock (_lock) _known.Add(key);
    }

    public bool IsKnown(string key)
    {
        lock (_lock) return _known.Contains(key);
    }

    public PingRecord? Get(string key)
    {
        lock (_lock) return _known.Contains(key) ? _records.GetValueOrDefault(key) ?? new PingRecord() : null;
    }

    /// <summary>False when the check (or Sentinel as a whole) is pinged faster than allowed.</summary>
    public bool TryAcquire(string key)
    {
        using var lease = _limiter.Value.AttemptAcquire(key);
        return lease.IsAcquired;
    }

    /// <summary>Records a ping: kind is success, start, fail, log, or an exit status 0-255.</summary>
    public async Task<PingOutcome> RecordAsync(string key, string kind, string? rid, string body, CancellationToken cancellationToken = default)
    {
        if (!IsKnown(key)) return PingOutcome.NotRecorded;
        var now = _time.GetUtcNow();
        PingRecord Change(PingRecord r) => r.After(kind, rid, body, now);
        var outcome = PingOutcome.Recorded;
        if (_store is { } store)
        {
            try
            {
                var written = await store.RecordPingAsync(key, Change, cancellationToken);
                lock (_lock) _records[key] = written;
                _written?.Invoke(null);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _written?.Invoke(ex);
                if (_shared) return PingOutcome.NotRecorded;
                outcome = PingOutcome.RecordedHereOnly;
            }
        }
        if (_store is null || outcome == PingOutcome.RecordedHereOnly)
            lock (_lock) _records[key] = Change(_records.GetValueOrDefault(key) ?? new PingRecord());
        if (kind != "log") Pinged?.Invoke(key);
        return outcome;
    }

    /// <summary>
    /// Takes what other nodes heard (read from the shared store); a check whose judgement it changes is raised on
    /// <see cref="Pinged"/>, so its rule is checked at once.
    /// </summary>
    public void Merge(IEnumerable<KeyValuePair<string, PingRecord>> records)
    {
        var changed = new List<string>();
        lock (_lock)
            foreach (var (key, record) in records)
            {
                var was = _records.GetValueOrDefault(key);
                if (was == record) continue;
                _records[key] = record;
                if (_known.Contains(key) && (was is null || was.JudgedDifferently(record))) changed.Add(key);
            }
        foreach (var key in changed) Pinged?.Invoke(key);
    }

    /// <summary>Raised (outside the lock) after a ping that changes a check's judgement: success, start, fail or an exit status.
    /// The engine checks the check's rules at once, so a <c>/fail</c> takes effect when it arrives, not at the next check.</summary>
    public event Action<string>? Pinged;

    public void Dispose()
    {
        if (_limiter.IsValueCreated) _limiter.Value.Dispose();
    }
}
