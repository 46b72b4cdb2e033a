using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Sentinel.Abstractions;

/// <summary>Durations written like Prometheus: <c>250ms</c>, <c>10s</c>, <c>5m</c>, <c>1h30m</c>, <c>2d</c>.</summary>
public static partial class Duration
{
    /// <summary>How to write one, for error messages.</summary>
    public const string Help = "write a number with a unit (us, ms, s, m, h, d), e.g. 500ms, 10s, 5m, 1h30m";

    /// <summary>Reads <c>250ms</c>, <c>10s</c>, <c>1h30m</c> (parts add up; <c>us</c>, <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c>, <c>d</c>), or <c>0</c>.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        if (s == "0") return true;
        var matches = Part().Matches(s);
        if (matches.Count == 0 || matches.Sum(m => m.Length) != s.Length) return false;
        double ticks = 0;
        foreach (Match m in matches)
        {
            var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            ticks += m.Groups[2].Value switch
            {
                "us" or "µs" => n * TimeSpan.TicksPerMicrosecond,
                "ms" => n * TimeSpan.TicksPerMillisecond,
                "s" => n * TimeSpan.TicksPerSecond,
                "m" => n * TimeSpan.TicksPerMinute,
                "h" => n * TimeSpan.TicksPerHour,
                "d" => n * TimeSpan.TicksPerDay,
                _ => double.NaN,
            };
        }
        if (double.IsNaN(ticks) || ticks > TimeSpan.MaxValue.Ticks) return false;
        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    /// <summary>As <see cref="TryParse"/>; throws <see cref="FormatException"/> with <see cref="Help"/> when it is not a duration.</summary>
    public static TimeSpan Parse(string text) => TryParse(text, out var v)
        ? v
        : throw new FormatException($"'{text}' is not a duration: {Help}");

    /// <summary>Formats a duration the way it is written in configuration, e.g. <c>1m30s</c> or <c>250ms</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero) return "0s";
        if (value < TimeSpan.Zero) return "-" + Format(value.Negate());
        if (value < TimeSpan.FromSeconds(1))
        {
            var ms = value.TotalMilliseconds;
            return ms >= 1 || ms == 0
                ? ms.ToString("0.###", CultureInfo.InvariantCulture) + "ms"
                : (value.Ticks / 10.0).ToString("0.#", CultureInfo.InvariantCulture) + "us";
        }
        var sb = new StringBuilder();
        if (value.Days > 0) sb.Append(value.Days).Append('d');
        if (value.Hours > 0) sb.Append(value.Hours).Append('h');
        if (value.Minutes > 0) sb.Append(value.Minutes).Append('m');
        var seconds = value.Seconds + value.Milliseconds / 1000.0;
        if (seconds > 0) sb.Append(seconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return sb.ToString();
    }

    /// <summary>
    /// A duration for people reading a table: whole seconds below an hour, whole minutes from there (<c>42s</c>,
    /// <c>3h12m</c>); rounded down (an age, an uptime), or up (a countdown, which never shows 0s before it is due).
    /// </summary>
    public static string FormatCoarse(TimeSpan value, bool roundUp = false)
    {
        if (value <= TimeSpan.Zero) return "0s";
        var round = roundUp ? (Func<double, double>)Math.Ceiling : Math.Floor;
        return Format(value.TotalHours >= 1 ? TimeSpan.FromMinutes(round(value.TotalMinutes)) : TimeSpan.FromSeconds(round(value.TotalSeconds)));
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h|d)")]
    private static partial Regex Part();
}
