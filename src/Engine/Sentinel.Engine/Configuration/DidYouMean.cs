namespace Sentinel.Engine.Configuration;

internal static class DidYouMean
{
    /// <summary>" (did you mean 'x'?)" for the closest candidate, or " (known: a, b, c)" when none is close.</summary>
    public static string Suffix(string given, IEnumerable<string> candidates, string knownLabel = "known")
    {
        var list = candidates.Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList();
        if (list.Count == 0) return "";
        var best = list.Select(c => (c, d: Distance(given.ToLowerInvariant(), c.ToLowerInvariant()))).MinBy(x => x.d);
        var limit = Math.Max(2, given.Length / 3);
        return best.d <= limit
            ? $" (did you mean '{best.c}'?)"
            : $" ({knownLabel}: {string.Join(", ", list)})";
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) prev[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
