using System.Globalization;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

internal sealed class MemoryProbe(MemoryProbeOptions options) : IProbe
{
    private readonly ProcessFinder _finder = new(options);
    private readonly Queue<(DateTimeOffset At, long Rss)> _samples = new();
    private int _pid;

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (ReadMemInfo() is not { } mem)
            return ValueTask.FromResult(ProbeResult.Unhealthy("the memory probe reads /proc/meminfo, which this system does not have"));
        var data = new Dictionary<string, object>
        {
            ["total"] = new ByteSize(mem.Total),
            ["available"] = new ByteSize(mem.Available),
            ["available-percent"] = Percent(mem.Available, mem.Total),
            ["swap-used"] = new ByteSize(mem.SwapTotal - mem.SwapFree),
            ["swap-used-percent"] = Percent(mem.SwapTotal - mem.SwapFree, mem.SwapTotal),
        };
        var summary = $"{new ByteSize(mem.Available)} available of {new ByteSize(mem.Total)}";
        var scope = _finder.Scope(context);
        if (scope.Session is null && scope.Instead is null && !_finder.Selects) return ValueTask.FromResult(ProbeResult.Healthy(summary, data));
        if (scope.Instead is { } instead)
        {
            _samples.Clear(); // a restarted service starts a new trend
            foreach (var (k, v) in instead.Data ?? new Dictionary<string, object>()) data[k] = v;
            return ValueTask.FromResult(instead with { Data = data });
        }

        var found = _finder.Find(cancellationToken, out var problem, scope.Session);
        if (found is null || found.Count == 0)
        {
            _samples.Clear(); // a restarted process starts a new trend
            return ValueTask.FromResult(ProbeResult.Unhealthy(found is null ? problem : $"no process matches {_finder.Describe(scope.Session)}", null, data));
        }
        if (found[0].Pid != _pid) _samples.Clear(); // another process (a restarted service): a new trend
        _pid = found[0].Pid;
        var rss = found.Sum(p => p.RssBytes);
        var now = context.TimeProvider.GetUtcNow();
        _samples.Enqueue((now, rss));
        while (_samples.Count > 2 && now - _samples.Peek().At > options.TrendWindow) _samples.Dequeue();
        data["rss"] = new ByteSize(rss);
        data["rss-percent"] = Percent(rss, mem.Total);
        data["pid"] = found[0].Pid;
        if (Growth() is { } perHour) data["rss-growth"] = new ByteSize((long)perHour);
        return ValueTask.FromResult(ProbeResult.Healthy($"rss {new ByteSize(rss)} ({Percent(rss, mem.Total)}% of memory); {summary}", data));
    }

    // Least-squares slope of RSS over the window, in bytes per hour: one noisy sample does not make a leak.
    private double? Growth()
    {
        if (_samples.Count < 2) return null;
        var t0 = _samples.Peek().At;
        var points = _samples.Select(s => ((s.At - t0).TotalHours, (double)s.Rss)).ToList();
        if (points[^1].TotalHours <= 0) return null;
        double mx = points.Average(p => p.TotalHours), my = points.Average(p => p.Item2);
        double sxx = points.Sum(p => (p.TotalHours - mx) * (p.TotalHours - mx));
        double sxy = points.Sum(p => (p.TotalHours - mx) * (p.Item2 - my));
        return sxx == 0 ? null : sxy / sxx;
    }

    private static double Percent(long part, long whole) => whole <= 0 ? 0 : Math.Round(100.0 * part / whole, 1);

    private static (long Total, long Available, long SwapTotal, long SwapFree)? ReadMemInfo()
    {
        try
        {
            var values = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                var colon = line.IndexOf(':');
                if (colon < 0) continue;
                var parts = line[(colon + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var v))
                    values[line[..colon]] = parts.Length > 1 && parts[1] == "kB" ? v * 1024 : v;
            }
            return (values.GetValueOrDefault("MemTotal"), values.GetValueOrDefault("MemAvailable"),
                values.GetValueOrDefault("SwapTotal"), values.GetValueOrDefault("SwapFree"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
