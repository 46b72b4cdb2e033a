using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.History;


/// <summary>
/// Keeps every check in the history store: appends it to its rule's open chunk, adds it to its hour's counts, and keeps
/// the last few in memory for sparklines. Uptime figures come from the hourly counts of the last 30 days, held in
/// memory, so a status page over thousands of rules never reads the disk. Changes are written in one transaction
/// per flush interval (checks not yet written are served from memory; a SIGKILL loses at most one interval of
/// history, never state); checks older than the retention are deleted (the hourly counts stay for the downsampled retention).
/// </summary>
internal sealed partial class HistoryRecorder : IAsyncDisposable
{
    /// <summary>Checks kept in memory per rule (the page's sparkline); at most 64, as which failed is one bit each.</summary>
    public const int RecentSize = 60;
    /// <summary>Checks per chunk at most (a chunk also ends with its hour).</summary>
    public const int ChunkChecks = 64;
    private const long MemoryHours = 30 * 24 + 1;
    private readonly IHistoryStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, RuleHistory> _rules = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    private readonly State.StateWriteMonitor? _writes;

    public HistoryRecorder(IHistoryStore store, HistorySettings settings, TimeProvider time, ILogger logger, State.StateWriteMonitor? writes = null)
    {
        _writes = writes;
        _store = store;
        Settings = settings;
        _time = time;
        _logger = logger;
    }

    public HistorySettings Settings { get; }
    public IHistoryStore Store => _store;

    private sealed class RuleHistory
    {
        public readonly Lock Lock = new();
        public CheckChunk? Open;
        public bool OpenDirty;
        public readonly List<CheckChunk> Closed = [];
        // This node's whole counts of the hours it may still add to or write: the current and the last hour, and any
        // not yet written. Older ones are in Past (and the store).
        public readonly Dictionary<long, HourCounts> Hours = [];
        public readonly HashSet<long> DirtyHours = [];
        // Hours before it are no longer in Hours (Compact): a check dated before it (a clock set back) is counted in it.
        public long KeptFrom = long.MinValue;
        // What uptime needs of the older hours of the last 30 days, checks and down, one slot an hour (hour % MemoryHours;
        // PastTop the newest hour in it). Kept as whole HourCounts in Hours, a month was 65 KB a rule: 620 MB at 10,000 rules.
        public Tally[]? Past;
        public long PastTop = long.MinValue / 2; // nothing in Past yet (and PastTop - MemoryHours does not overflow)
        // The sparkline's ring: the last checks' durations in milliseconds, and which failed (bit i for slot i).
        public float[]? RecentMs; // allocated at the first check
        public ulong RecentFailed;
        public int RecentNext;
        public int RecentCount;
        // The uptime sums of the hours before UptimeHour (within 30 days), kept until the hour turns or a past hour
        // changes: status.json and the page ask for every rule's uptime, which was a walk over up to 720 hours each.
        public long UptimeHour = long.MinValue;
        public long DayChecks, DayDown, WeekChecks, WeekDown, MonthChecks, MonthDown, OthersNowChecks, OthersNowDown;
        // In a cluster, the hourly counts other nodes made of this rule (it ran there before, or runs there now).
        public Dictionary<(string Node, long Hour), HourCounts>? Others;
    }

    /// <summary>Reads the last 30 days of hourly counts and each rule's last checks (whenever they were).</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var nowHour = _time.GetUtcNow().ToUnixTimeMilliseconds() / HistoryMath.HourMs;
        foreach (var b in await _store.LoadHourlyAsync(nowHour - MemoryHours, cancellationToken))
        {
            var h = Get(b.Rule);
            lock (h.Lock)
            {
                h.Hours[b.Hour] = b.Counts;
                h.UptimeHour = long.MinValue;
            }
        }
        foreach (var h in _rules.Values)
            lock (h.Lock) Compact(h, nowHour);
        await RefreshOthersAsync(cancellationToken);
        foreach (var (name, points) in await _store.LatestAsync(cancellationToken))
        {
            var h = Get(name);
            lock (h.Lock)
                foreach (var p in points.Skip(Math.Max(0, points.Count - RecentSize))) AddRecent(h, p);
        }
    }

    public void Start() => _loop ??= State.DedicatedThread.Start("sentinel-history", Loop);

    private void Loop()
    {
        var lastPrune = DateTimeOffset.MinValue;
        long flushes = 0;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                _stop.Token.WaitHandle.WaitOne(Settings.FlushInterval);
                FlushAsync(CancellationToken.None).GetAwaiter().GetResult();
                if (++flushes % OthersEvery == 0) RefreshOthersAsync(CancellationToken.None).GetAwaiter().GetResult();
                if (_time.GetUtcNow() - lastPrune >= TimeSpan.FromHours(1))
                {
                    PruneAsync(CancellationToken.None).GetAwaiter().GetResult();
                    lastPrune = _time.GetUtcNow();
                }
            }
            catch (Exception ex) when (_writes is not null) { _writes.Failure("history", ex); }
            catch (Exception ex) { LogFlushFailed(_logger, ex); }
        }
    }

    private RuleHistory Get(string rule) => _rules.GetOrAdd(rule, _ => new RuleHistory());

    public void Record(string rule, CheckRecord check, RuleStatus state)
    {
        var point = new CheckPoint(check.At, check.Status, state, check.Duration, check.Description, check.Stuck);
        var h = Get(rule);
        var ms = point.At.ToUnixTimeMilliseconds();
        var chunkHour = ms / HistoryMath.HourMs;
        lock (h.Lock)
        {
            var hour = Math.Max(chunkHour, h.KeptFrom);
            // Small chunks: a cluster's store rewrites the open one at each flush, so its size bounds the write amplification.
            // A chunk's checks all count in one hour (CountHour), so a journaling store can add a closed chunk to it.
            if (h.Open is { } open && (open.Hour != chunkHour || open.CountHour != hour || open.Count >= ChunkChecks || open.Size > 8 * 1024 || ms < open.EndMs))
            {
                h.Closed.Add(open);
                h.Open = null;
            }
            h.Open ??= new CheckChunk(ms) { CountHour = hour };
            h.Open.Append(point);
            h.OpenDirty = true;
            var counts = h.Hours.GetValueOrDefault(hour);
            if (hour != h.UptimeHour) h.UptimeHour = long.MinValue; // a past hour changed: its sums are stale
            counts.Add(point);
            h.Hours[hour] = counts;
            h.DirtyHours.Add(hour);
            AddRecent(h, point);
        }
    }

    // What the sparkline shows of a check, no more: its duration and whether it failed, 0.3 KB a rule. Whole checks
    // (time, status, state, description) were 2.4 KB a rule, 24 MB at 10,000 rules, and kept each check's description
    // alive; the checks themselves are in the open chunk and the store.
    private static void AddRecent(RuleHistory h, CheckPoint p)
    {
        (h.RecentMs ??= new float[RecentSize])[h.RecentNext] = (float)p.Duration.TotalMilliseconds;
        var bit = 1UL << h.RecentNext;
        h.RecentFailed = p.Status == ProbeStatus.Unhealthy ? h.RecentFailed | bit : h.RecentFailed & ~bit;
        h.RecentNext = (h.RecentNext + 1) % RecentSize;
        h.RecentCount = Math.Min(RecentSize, h.RecentCount + 1);
    }

    /// <summary>The rule's last <paramref name="count"/> checks (at most <see cref="RecentSize"/>) as a sparkline, oldest first.</summary>
    public Sparkline Recent(string rule, int count = RecentSize)
    {
        if (!_rules.TryGetValue(rule, out var h)) return Sparkline.Empty;
        lock (h.Lock)
        {
            if (h.RecentMs is not { } ring) return Sparkline.Empty;
            var n = Math.Min(Math.Max(0, count), h.RecentCount);
            var ms = new double[n];
            List<int>? failed = null;
            for (var i = 0; i < n; i++)
            {
                var slot = (h.RecentNext + RecentSize - n + i) % RecentSize;
                ms[i] = Math.Round(ring[slot], 1);
                if ((h.RecentFailed & (1UL << slot)) != 0) (failed ??= []).Add(i);
            }
            return new Sparkline(ms, failed ?? (IReadOnlyList<int>)[]);
        }
    }

    /// <summary>Other nodes' hourly counts are read again at every this many flushes (in a cluster).</summary>
    public const int OthersEvery = 2;
    private DateTimeOffset? _othersSince;

    /// <summary>
    /// Reads what other nodes of a cluster counted since the last read (nothing on one box), so that uptime counts
    /// every check of a rule, wherever it ran.
    /// </summary>
    public async Task RefreshOthersAsync(CancellationToken cancellationToken)
    {
        var fromHour = _time.GetUtcNow().ToUnixTimeMilliseconds() / HistoryMath.HourMs - MemoryHours;
        var (now, hours) = await _store.OthersHourlyAsync(fromHour, _othersSince, cancellationToken);
        // A write whose transaction began before this read and committed after it carries an earlier time: the last
        // seconds are read again.
        _othersSince = now - TimeSpan.FromSeconds(30);
        foreach (var (node, b) in hours)
        {
            var h = Get(b.Rule);
            lock (h.Lock)
            {
                h.Others ??= [];
                h.Others[(node, b.Hour)] = b.Counts;
                h.UptimeHour = long.MinValue;
                if (h.Others.Count > MemoryHours * 2)
                    foreach (var old in h.Others.Keys.Where(k => k.Hour < fromHour).ToList()) h.Others.Remove(old);
            }
        }
    }

    /// <summary>A rule's checks between two times, oldest first, at most <paramref name="limit"/> (the newest), including the ones not yet written.</summary>
    public async Task<List<CheckPoint>> ChecksAsync(string rule, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken)
    {
        List<CheckPoint> unwritten = [];
        long? before = null;
        if (_rules.TryGetValue(rule, out var h))
            lock (h.Lock)
            {
                // What is in memory is newer than what is on disk under the same chunk key; read it from memory.
                var chunks = h.Closed.Append(h.Open).OfType<CheckChunk>().ToList();
                if (chunks.Count > 0)
                {
                    before = chunks.Min(c => c.StartMs);
                    unwritten = chunks.SelectMany(c => CheckChunk.Decode(c.StartMs, c.ToArray())).Where(p => p.At >= from && p.At <= to).ToList();
                }
            }
        // Other nodes' checks (in a cluster) may be newer than what is in memory here: merged by time.
        var stored = await _store.ChecksAsync(rule, from, to, limit, cancellationToken, before);
        stored.AddRange(unwritten);
        stored.Sort((a, b) => a.At.CompareTo(b.At));
        return stored.Count > limit ? stored[^limit..] : stored;
    }

    /// <summary>
    /// A rule's hourly counts between two times, oldest first: this node's (from memory where it has them, newer than
    /// the store) and, in a cluster, the other nodes' added.
    /// </summary>
    public async Task<List<HourBucket>> HourlyAsync(string rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var stored = await _store.HourlyAsync(rule, from, to, cancellationToken);
        if (_rules.TryGetValue(rule, out var h))
        {
            long fromHour = from.ToUnixTimeMilliseconds() / HistoryMath.HourMs, toHour = to.ToUnixTimeMilliseconds() / HistoryMath.HourMs;
            lock (h.Lock)
            {
                var inMemory = h.Hours.Where(kv => kv.Key >= fromHour && kv.Key <= toHour).ToList();
                stored.RemoveAll(s => s.Mine && h.Hours.ContainsKey(s.Hour));
                stored.AddRange(inMemory.Select(kv => new StoredHour(kv.Key, true, kv.Value)));
            }
        }
        return stored.Summed();
    }

    /// <summary>Writes what changed since the last flush, in one transaction.</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default) => FlushAsync(final: false, cancellationToken);

    private readonly record struct Taken(RuleHistory H, List<CheckChunk> Closed, CheckChunk? Open, int Count, int Size, List<long> Hours);

    // With a journaling store, a chunk is written once, closed, its counts added to its hour's, and the open chunks' new
    // checks go to the journal; otherwise every changed open chunk and hour is written whole again. Final: at a stop,
    // every open chunk is closed, so a journal is left empty.
    private async Task FlushAsync(bool final, CancellationToken cancellationToken)
    {
        await _flushGate.WaitAsync(cancellationToken);
        try
        {
            var journaled = _store as IJournaledHistoryStore;
            var chunks = new List<ChunkWrite>();
            var buckets = new List<BucketWrite>();
            var slices = new List<JournalSlice>();
            var taken = new List<Taken>();
            var pinned = long.MaxValue; // the oldest journal row an open chunk still needs
            var nowHour = _time.GetUtcNow().ToUnixTimeMilliseconds() / HistoryMath.HourMs;
            foreach (var (rule, h) in _rules)
            {
                lock (h.Lock)
                {
                    Compact(h, nowHour); // the rules with nothing new
                    // A chunk of a past hour gets no more checks: closed, it leaves the journal (a stopped rule's too).
                    if (journaled is not null && h.Open is { } done && (final || done.Hour < nowHour))
                    {
                        h.Closed.Add(done);
                        h.Open = null;
                    }
                    if (h.Open?.FirstJournal is { } first) pinned = Math.Min(pinned, first);
                    var open = journaled is null ? (h.OpenDirty ? h.Open : null) : h.Open is { } o && o.Count > o.Journaled ? o : null;
                    if (h.Closed.Count == 0 && open is null && h.DirtyHours.Count == 0) continue;
                    var closed = h.Closed.ToList();
                    foreach (var c in closed)
                    {
                        chunks.Add(new(rule, c.StartMs, c.EndMs, c.Count, c.ToArray()));
                        if (journaled is not null) buckets.Add(new(rule, c.CountHour, c.Counts));
                    }
                    var hours = h.DirtyHours.ToList();
                    if (journaled is not null && open is not null)
                        slices.Add(new(rule, open.StartMs, open.Journaled, open.Count - open.Journaled, open.EndMs, open.BytesFrom(open.JournaledBytes)));
                    else if (journaled is null)
                    {
                        if (open is not null) chunks.Add(new(rule, open.StartMs, open.EndMs, open.Count, open.ToArray()));
                        foreach (var hour in hours) buckets.Add(new(rule, hour, h.Hours[hour]));
                    }
                    taken.Add(new(h, closed, open, open?.Count ?? 0, open?.Size ?? 0, hours));
                    h.OpenDirty = false;
                    h.DirtyHours.Clear();
                }
            }
            long journalRow = 0;
            try
            {
                if (journaled is not null) journalRow = await journaled.WriteAsync(chunks, buckets, slices, pinned, cancellationToken);
                else await _store.WriteAsync(chunks, buckets, cancellationToken);
            }
            catch
            {
                foreach (var t in taken)
                    lock (t.H.Lock)
                    {
                        if (journaled is null && t.Open is not null && ReferenceEquals(t.Open, t.H.Open)) t.H.OpenDirty = true;
                        foreach (var hour in t.Hours) t.H.DirtyHours.Add(hour);
                    }
                throw;
            }
            foreach (var t in taken)
                lock (t.H.Lock)
                {
                    t.H.Closed.RemoveAll(t.Closed.Contains);
                    if (journaled is not null && t.Open is { } open)
                    {
                        open.Journaled = t.Count;
                        open.JournaledBytes = t.Size;
                        open.FirstJournal ??= journalRow;
                    }
                    Compact(t.H, nowHour);
                }
            _writes?.Success("history");
        }
        finally { _flushGate.Release(); }
    }

    /// <summary>Deletes the checks older than the retention and the hourly counts older than the downsampled retention.</summary>
    public async Task PruneAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var (chunks, hours) = await _store.PruneAsync(now - Settings.Retention, now - Settings.DownsampledRetention, cancellationToken);
        if (chunks + hours > 0) LogPruned(_logger, chunks, hours);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null) await _loop;
        try { await FlushAsync(final: true, CancellationToken.None); }
        catch (Exception ex) { LogFlushFailed(_logger, ex); }
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 410, Level = LogLevel.Error, Message = "Writing the check history failed; it will be retried")]
    private static partial void LogFlushFailed(ILogger logger, Exception ex);

    [LoggerMessage(EventId = 411, Level = LogLevel.Debug, Message = "History retention: {Chunks} chunks of checks and {Hours} hourly rows deleted")]
    private static partial void LogPruned(ILogger logger, int chunks, int hours);
}

