using System.Globalization;
using System.Text.RegularExpressions;

namespace Sentinel.Engine.Tests.Support;

/// <summary>
/// A strict reader of Prometheus' text exposition format (0.0.4): every line must be a HELP or TYPE comment or a
/// sample; samples of a histogram must have rising buckets ending in +Inf equal to _count. Throws on any violation.
/// </summary>
public static partial class PrometheusText
{
    public static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var lineNo = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNo++;
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var m = Comment().Match(line);
                if (!m.Success) throw new FormatException($"line {lineNo}: not a HELP/TYPE comment: {line}");
                if (m.Groups[1].Value == "TYPE")
                {
                    if (m.Groups[3].Value is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                        throw new FormatException($"line {lineNo}: unknown type in {line}");
                    if (!types.TryAdd(m.Groups[2].Value, m.Groups[3].Value)) throw new FormatException($"line {lineNo}: a second TYPE for {m.Groups[2].Value}");
                }
                continue;
            }
            var s = Sample().Match(line);
            if (!s.Success) throw new FormatException($"line {lineNo}: not a sample: {line}");
            var labels = s.Groups[2].Success ? s.Groups[2].Value : "";
            if (labels.Length > 0 && !LabelList().IsMatch(labels)) throw new FormatException($"line {lineNo}: bad labels: {line}");
            var raw = s.Groups[3].Value;
            var value = raw switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            var key = s.Groups[1].Value + (labels.Length > 0 ? "{" + labels + "}" : "");
            if (!samples.TryAdd(key, value)) throw new FormatException($"line {lineNo}: duplicate series {key}");
        }
        foreach (var (name, type) in types.Where(t => t.Value == "histogram"))
            foreach (var series in samples.Keys.Where(k => k.StartsWith(name + "_count", StringComparison.Ordinal)))
            {
                var labels = series.Length > name.Length + 6 ? series[(name.Length + 7)..^1] : "";
                var buckets = samples.Where(kv => kv.Key.StartsWith(name + "_bucket{", StringComparison.Ordinal) && (labels.Length == 0 || kv.Key.Contains(labels, StringComparison.Ordinal)))
                    .Select(kv => (Le: LeOf(kv.Key), kv.Value)).OrderBy(b => b.Le).ToList();
                if (buckets.Count == 0 || !double.IsPositiveInfinity(buckets[^1].Le)) throw new FormatException($"{series}: no +Inf bucket");
                for (var i = 1; i < buckets.Count; i++)
                    if (buckets[i].Value < buckets[i - 1].Value) throw new FormatException($"{series}: buckets fall at le={buckets[i].Le}");
                if (buckets[^1].Value != samples[series]) throw new FormatException($"{series}: +Inf bucket {buckets[^1].Value} != count {samples[series]}");
            }
        return samples;
    }

    private static double LeOf(string key)
    {
        var le = Regex.Match(key, "[{,]le=\"([^\"]+)\"").Groups[1].Value;
        return le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$")]
    private static partial Regex Comment();

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)( -?\d+)?$")]
    private static partial Regex Sample();

    [GeneratedRegex(@"^[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*""(?:,[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"")*,?$")]
    private static partial Regex LabelList();
}
