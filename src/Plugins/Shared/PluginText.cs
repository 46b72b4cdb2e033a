using System.Text.RegularExpressions;

namespace Sentinel.Plugins.Shared;

/// <summary>Small text helpers shared by the first-party plugins (compiled into each; plugins cannot see the engine).</summary>
internal static class PluginText
{
    /// <summary>A duration for people: <c>2d3h</c>, <c>1h5m</c>, <c>6m0s</c>, <c>42s</c>.</summary>
    public static string Duration(TimeSpan t)
        => t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h"
        : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes}m"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds}s"
        : $"{t.TotalSeconds:0}s";

    /// <summary>Why <paramref name="pattern"/> is not a valid regular expression, or null when it is.</summary>
    public static string? RegexError(string? pattern)
    {
        if (pattern is null) return null;
        try
        {
            _ = new Regex(pattern);
            return null;
        }
        catch (ArgumentException ex) { return ex.Message; }
    }
}
