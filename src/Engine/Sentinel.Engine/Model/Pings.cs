namespace Sentinel.Engine.Model;

/// <summary>What Sentinel's ping endpoint heard for one check.</summary>
internal sealed record PingRecord(
    DateTimeOffset? LastSuccess = null, DateTimeOffset? LastStart = null, string? StartRid = null, DateTimeOffset? LastFail = null,
    int? LastExitCode = null, string? LastBody = null, TimeSpan? LastDuration = null, long Pings = 0)
{
    /// <summary>
    /// The record after a ping of <paramref name="kind"/> (success, start, fail, log, or an exit status 0-255) heard
    /// at <paramref name="now"/>: a finish pairs with its start by run id when both carry one.
    /// </summary>
    public PingRecord After(string kind, string? rid, string body, DateTimeOffset now)
    {
        var r = this with { Pings = Pings + 1, LastBody = body.Length > 0 ? body : LastBody };
        TimeSpan? duration = r.LastStart is { } s && (rid is null || rid == r.StartRid) ? now - s : null;
        PingRecord Finished(int code, bool ok) => ok
            ? r with { LastSuccess = now, LastExitCode = code, LastDuration = duration ?? r.LastDuration, LastStart = null }
            : r with { LastFail = now, LastExitCode = code == 0 ? null : code, LastDuration = duration ?? r.LastDuration, LastStart = null };
        return kind switch
        {
            "start" => r with { LastStart = now, StartRid = rid },
            "log" => r,
            "fail" => Finished(0, ok: false),
            "success" => Finished(0, ok: true),
            _ when int.TryParse(kind, out var code) => Finished(code, ok: code == 0),
            _ => r,
        };
    }

    /// <summary>Whether the two say something different of the check's runs (a <c>/log</c> ping does not).</summary>
    public bool JudgedDifferently(PingRecord other)
        => LastSuccess != other.LastSuccess || LastStart != other.LastStart || LastFail != other.LastFail || LastExitCode != other.LastExitCode;
}

/// <summary>
/// Where the inbound pings are kept, beside the rule state: the embedded SQLite file (a restart forgets no run that
/// started and did not finish), or the PostgreSQL database of a cluster, where a ping any node hears is seen by the
/// node that runs its rule.
/// </summary>
internal interface IPingStore
{
    /// <summary>Every check's record.</summary>
    Task<IReadOnlyDictionary<string, PingRecord>> LoadPingsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Changes a check's record as one step (a ping another node hears at the same moment is applied before or
    /// after, never lost) and returns it as written.
    /// </summary>
    Task<PingRecord> RecordPingAsync(string key, Func<PingRecord, PingRecord> change, CancellationToken cancellationToken);
}
