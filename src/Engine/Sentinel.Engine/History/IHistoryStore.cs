namespace Sentinel.Engine.History;

/// <summary>One chunk of a rule's checks, as written (rewritten while it is the rule's open chunk).</summary>
internal sealed record ChunkWrite(string Rule, long StartMs, long EndMs, int Count, byte[] Data);

/// <summary>A rule's counts for one hour (hours since the Unix epoch), as this node counted them.</summary>
internal sealed record BucketWrite(string Rule, long Hour, HourCounts Counts);

/// <summary>A rule's counts for one hour as stored; <paramref name="Mine"/>: counted by this node (on one box, all).</summary>
internal sealed record StoredHour(long Hour, bool Mine, HourCounts Counts);

internal static class StoredHours
{
    /// <summary>Per hour, oldest first, the counts of every node together.</summary>
    public static List<HourBucket> Summed(this IEnumerable<StoredHour> hours)
        => hours.GroupBy(h => h.Hour).OrderBy(g => g.Key).Select(g => g.Aggregate(default(HourCounts), (sum, h) => sum.Plus(h.Counts)).ToBucket(g.Key)).ToList();
}

/// <summary>
/// Where every check is kept: each rule's checks packed per hour (<see cref="CheckChunk"/>) for the retention, and its
/// hourly counts for far longer. On one box an SQLite file of its own (<see cref="SqliteHistoryStore"/>); in a cluster
/// the shared PostgreSQL database (<see cref="PostgresHistoryStore"/>), where each node writes the checks it made and
/// reads the whole cluster's, so a rule's history and uptime stay whole when it moves from node to node.
/// </summary>
internal interface IHistoryStore : IAsyncDisposable
{
    /// <summary>Where it is, for messages: a file's path, or the database.</summary>
    string Where { get; }

    /// <summary>Writes (replaces) this node's chunks and hourly counts, in one transaction.</summary>
    Task WriteAsync(IReadOnlyCollection<ChunkWrite> chunks, IReadOnlyCollection<BucketWrite> buckets, CancellationToken cancellationToken);

    /// <summary>The hourly counts this node wrote, of every rule, from <paramref name="fromHour"/> on: what it goes on counting.</summary>
    Task<List<BucketWrite>> LoadHourlyAsync(long fromHour, CancellationToken cancellationToken);

    /// <summary>
    /// The hourly counts other nodes wrote from <paramref name="fromHour"/> on, changed since <paramref name="since"/>
    /// (all, when null), per node; and the database's time of the read. Empty on one box.
    /// </summary>
    Task<(DateTimeOffset Now, List<(string Node, BucketWrite Bucket)> Hours)> OthersHourlyAsync(long fromHour, DateTimeOffset? since, CancellationToken cancellationToken);

    /// <summary>Every rule's newest checks (its last two chunks, whichever node wrote them), for the sparklines after a start.</summary>
    Task<Dictionary<string, List<CheckPoint>>> LatestAsync(CancellationToken cancellationToken);

    /// <summary>A rule's hourly counts between two times (inclusive hours), each node's apart.</summary>
    Task<List<StoredHour>> HourlyAsync(string rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken);

    /// <summary>
    /// A rule's checks between two times, oldest first, at most <paramref name="limit"/> (the newest ones), of every
    /// node; of this node's, only chunks that start before <paramref name="beforeStartMs"/> (newer ones are in memory).
    /// </summary>
    Task<List<CheckPoint>> ChecksAsync(string rule, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken, long? beforeStartMs = null);

    /// <summary>Deletes checks older than <paramref name="checksBefore"/> and hourly counts older than <paramref name="hourlyBefore"/>.</summary>
    Task<(int Chunks, int Hours)> PruneAsync(DateTimeOffset checksBefore, DateTimeOffset hourlyBefore, CancellationToken cancellationToken);
}

/// <summary>
/// The checks of a rule's open chunk that the journal does not have yet: its checks <paramref name="FirstIndex"/> on
/// (<paramref name="Count"/> of them), as the chunk's bytes from there; a chunk's slices one after the other are its bytes.
/// </summary>
internal sealed record JournalSlice(string Rule, long ChunkStartMs, int FirstIndex, int Count, long EndMs, byte[] Data);

/// <summary>
/// A store that writes each chunk once, when it is closed, and adds its counts to its hour's; the open chunks' new checks
/// go into one journal row a flush. Rewriting every rule's open chunk and hour at each flush was 20,000 scattered row
/// writes at 10,000 rules, a flush's CPU growing with the days stored (1.4% of a core with one day). After a SIGKILL,
/// the store makes the journal's chunks rows of their own when it is opened again.
/// </summary>
internal interface IJournaledHistoryStore : IHistoryStore
{
    /// <summary>
    /// In one transaction: the closed chunks written, their counts added to their hours' (<paramref name="added"/>), the
    /// journal rows before <paramref name="dropJournalBefore"/> deleted, and <paramref name="journal"/> written as a
    /// new journal row, whose id it returns (0 when there were no slices).
    /// </summary>
    Task<long> WriteAsync(IReadOnlyCollection<ChunkWrite> closed, IReadOnlyCollection<BucketWrite> added, IReadOnlyCollection<JournalSlice> journal,
        long dropJournalBefore, CancellationToken cancellationToken);
}

/// <summary>Checks of one rule in one hour, summed: what uptime figures and the downsampled history are made of.</summary>
internal sealed record HourBucket(DateTimeOffset Hour, long Checks, long Failures, long Degraded, long Down, TimeSpan DurationAverage, TimeSpan DurationMax)
{
    /// <summary>Share of the checks taken while the rule was not down (after thresholds); null without checks.</summary>
    public double? Uptime => Checks == 0 ? null : (double)(Checks - Down) / Checks;
}

/// <summary>Running sums of one rule's checks in one hour.</summary>
internal struct HourCounts(long checks, long failures, long degraded, long down, long durationSumUs, long durationMaxUs)
{
    public long Checks = checks, Failures = failures, Degraded = degraded, Down = down, DurationSumUs = durationSumUs, DurationMaxUs = durationMaxUs;

    public void Add(CheckPoint p)
    {
        Checks++;
        if (p.Status == Abstractions.ProbeStatus.Unhealthy) Failures++;
        if (p.Status == Abstractions.ProbeStatus.Degraded) Degraded++;
        if (p.State == RuleStatus.Down) Down++;
        var us = Math.Max(0, p.Duration.Ticks / 10);
        DurationSumUs += us;
        DurationMaxUs = Math.Max(DurationMaxUs, us);
    }

    /// <summary>Two nodes' counts of one hour, together.</summary>
    public readonly HourCounts Plus(HourCounts o) => new(Checks + o.Checks, Failures + o.Failures, Degraded + o.Degraded, Down + o.Down,
        DurationSumUs + o.DurationSumUs, Math.Max(DurationMaxUs, o.DurationMaxUs));

    public readonly HourBucket ToBucket(long hour) => new(DateTimeOffset.FromUnixTimeMilliseconds(hour * HistoryMath.HourMs), Checks, Failures, Degraded, Down,
        TimeSpan.FromTicks(Checks == 0 ? 0 : DurationSumUs * 10 / Checks), TimeSpan.FromTicks(DurationMaxUs * 10));
}
