using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Metrics;

/// <summary>
/// The series every rule has, written in Prometheus' text format (0.0.4) after the registry's own: its state (gauges
/// written from the status at each scrape, nothing kept) and its checks (by result, its failures, its duration
/// histogram: plain counters). prometheus-net keeps a child per series (216 bytes, its label arrays and buckets beside
/// it): five a rule for the checks and six more once scraped, 26 MB of a 74 MB heap at 10,000 rules before a scrape
/// (docs/performance.md). These are ~0.2 KB a rule. A rule's check series start at zero with its first check, so a
/// rate over them sees the first failure.
/// </summary>
internal sealed class RuleSeries
{
    private static readonly RuleStatus[] States = Enum.GetValues<RuleStatus>();
    private static readonly string[] StateLabels = [.. States.Select(s => ",state=\"" + s.ToString().ToLowerInvariant() + "\"")];
    private static readonly double[] Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly string[] BucketLabels = [.. Buckets.Select(b => b.ToString(CultureInfo.InvariantCulture)), "+Inf"];
    private readonly ConcurrentDictionary<string, Series> _rules = new(StringComparer.Ordinal);

    private sealed class Series
    {
        public long Healthy, Degraded, Unhealthy, Failures;
        public readonly long[] InBucket = new long[Buckets.Length + 1]; // not cumulative: the last one is above 30 s
        public long SumBits; // the sum of durations in seconds, as a double's bits (added to with a compare-exchange)
    }

    public void OnCheck(string rule, ProbeStatus status, bool success, TimeSpan duration)
    {
        var s = _rules.GetOrAdd(rule, static _ => new Series());
        if (status == ProbeStatus.Healthy) Interlocked.Increment(ref s.Healthy);
        else if (status == ProbeStatus.Degraded) Interlocked.Increment(ref s.Degraded);
        else Interlocked.Increment(ref s.Unhealthy);
        if (!success) Interlocked.Increment(ref s.Failures);
        var seconds = Math.Max(0, duration.TotalSeconds);
        var i = 0;
        while (i < Buckets.Length && seconds > Buckets[i]) i++;
        Interlocked.Increment(ref s.InBucket[i]);
        long old, sum;
        do
        {
            old = Volatile.Read(ref s.SumBits);
            sum = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(old) + seconds);
        }
        while (Interlocked.CompareExchange(ref s.SumBits, sum, old) != old);
    }

    /// <summary>Drops a removed rule's series.</summary>
    public void Remove(string rule) => _rules.TryRemove(rule, out _);

    /// <summary>Writes the rules' states (<paramref name="states"/>, as the engine has them now) and their checks, rules in name order.</summary>
    public async Task WriteAsync(Stream stream, IEnumerable<(string Rule, RuleStatus Status)> states, CancellationToken cancellationToken)
    {
        var rules = _rules.ToArray();
        Array.Sort(rules, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        await using var w = new StreamWriter(stream, new UTF8Encoding(false), 64 * 1024, leaveOpen: true) { NewLine = "\n" };
        var line = new StringBuilder(256);
        var now = states.OrderBy(r => r.Rule, StringComparer.Ordinal).ToList();
        await w.WriteAsync("# HELP sentinel_rule_state 1 for the rule's current state (pending, healthy, failing, down, paused), else 0.\n# TYPE sentinel_rule_state gauge\n");
        foreach (var (rule, status) in now)
        {
            line.Clear();
            var label = Escape(rule);
            for (var i = 0; i < States.Length; i++) Sample(line, "sentinel_rule_state", label, StateLabels[i], States[i] == status ? 1 : 0);
            await w.WriteAsync(line, cancellationToken);
        }
        await w.WriteAsync("# HELP sentinel_rule_up 1 when the rule is healthy or failing (not yet down), 0 when down, paused or pending.\n# TYPE sentinel_rule_up gauge\n");
        line.Clear();
        foreach (var (rule, status) in now)
        {
            Sample(line, "sentinel_rule_up", Escape(rule), "", status is RuleStatus.Healthy or RuleStatus.Failing ? 1 : 0);
            if (line.Length > 32 * 1024) { await w.WriteAsync(line, cancellationToken); line.Clear(); }
        }
        await w.WriteAsync(line, cancellationToken);
        await w.WriteAsync("# HELP sentinel_check_duration_seconds How long a rule's check took.\n# TYPE sentinel_check_duration_seconds histogram\n");
        foreach (var (rule, s) in rules)
        {
            line.Clear();
            var label = Escape(rule);
            long cumulative = 0;
            for (var i = 0; i < BucketLabels.Length; i++)
            {
                cumulative += Volatile.Read(ref s.InBucket[i]);
                line.Append("sentinel_check_duration_seconds_bucket{rule=\"").Append(label).Append("\",le=\"").Append(BucketLabels[i]).Append("\"} ")
                    .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            line.Append("sentinel_check_duration_seconds_sum{rule=\"").Append(label).Append("\"} ")
                .Append(BitConverter.Int64BitsToDouble(Volatile.Read(ref s.SumBits)).ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            line.Append("sentinel_check_duration_seconds_count{rule=\"").Append(label).Append("\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            await w.WriteAsync(line, cancellationToken);
        }
        await w.WriteAsync("# HELP sentinel_checks_total Checks run, by result (healthy, degraded, unhealthy).\n# TYPE sentinel_checks_total counter\n");
        foreach (var (rule, s) in rules)
        {
            line.Clear();
            var label = Escape(rule);
            Sample(line, "sentinel_checks_total", label, ",result=\"healthy\"", Volatile.Read(ref s.Healthy));
            Sample(line, "sentinel_checks_total", label, ",result=\"degraded\"", Volatile.Read(ref s.Degraded));
            Sample(line, "sentinel_checks_total", label, ",result=\"unhealthy\"", Volatile.Read(ref s.Unhealthy));
            await w.WriteAsync(line, cancellationToken);
        }
        await w.WriteAsync("# HELP sentinel_check_failures_total Checks that failed (unhealthy, timed out, stuck).\n# TYPE sentinel_check_failures_total counter\n");
        line.Clear();
        foreach (var (rule, s) in rules)
        {
            Sample(line, "sentinel_check_failures_total", Escape(rule), "", Volatile.Read(ref s.Failures));
            if (line.Length > 32 * 1024) { await w.WriteAsync(line, cancellationToken); line.Clear(); }
        }
        await w.WriteAsync(line, cancellationToken);
    }

    private static void Sample(StringBuilder line, string name, string rule, string more, long value)
        => line.Append(name).Append("{rule=\"").Append(rule).Append('"').Append(more).Append("} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');

    // The text format's label value escapes: backslash, double quote and line feed.
    internal static string Escape(string value)
        => value.AsSpan().IndexOfAny('\\', '"', '\n') < 0 ? value : value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
