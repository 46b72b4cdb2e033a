using System.Text;
using System.Text.Json;
using Sentinel.Engine.Configuration;

namespace Sentinel.Host;

/// <summary>
/// `sentinel logs RULE [-f] [-n N] [--since 10m] [--checks]`, as `supervisorctl tail`: a supervised service's output
/// (reaching into its rotated files for the last N lines; `-f` follows it across rotations until Ctrl+C), or, for any
/// rule (and with `--checks`), its checks and events from the running Sentinel, oldest first.
/// </summary>
internal static class LogsCommand
{
    public static async Task<int> ExecuteAsync(string configPath, string rule, bool follow, int lines, string since, bool checks, CancellationToken ct)
    {
        if (!Duration.TryParse(since, out var window) || window <= TimeSpan.Zero)
        {
            Console.Error.WriteLine($"error: --since '{since}' is not a duration (e.g. 10m, 2h, 7d)");
            return Bootstrap.ExitConfigInvalid;
        }
        using var loggers = Bootstrap.QuietLoggerFactory();
        var (catalog, config) = Bootstrap.LoadValid(configPath, loggers);
        using (catalog)
        {
            if (config is null) return Bootstrap.ExitConfigInvalid;
            if (config.Rules.FirstOrDefault(r => r.Name == rule) is not { } def)
            {
                Console.Error.WriteLine($"error: there is no rule '{rule}'{DidYouMean.Suffix(rule, config.Rules.Select(r => r.Name), "rules")}");
                return Bootstrap.ExitConfigInvalid;
            }
            if (def.Supervise is { } spec && !checks)
            {
                var files = new[] { spec.Stdout!, spec.Stderr! }.Distinct().ToList();
                var printed = new Dictionary<string, long>(StringComparer.Ordinal);
                foreach (var file in files)
                {
                    if (files.Count > 1) Console.WriteLine($"==> {file} <==");
                    var tail = Tail(file, lines, spec.LogMaxFiles, out var read);
                    foreach (var line in tail) Console.WriteLine(line);
                    printed[file] = read;
                }
                if (!follow) return 0;
                // Followed from the end of what was printed, not from the file's end now: a line written in between is shown.
                try { await Task.WhenAll(files.Select(f => FollowAsync(f, printed[f], files.Count > 1 ? Path.GetFileName(f) + ": " : "", ct))); }
                catch (OperationCanceledException) { }
                return 0;
            }
            return await ChecksAsync(configPath, rule, follow, lines, window, ct);
        }
    }

    /// <summary>The last <paramref name="count"/> lines of a log, taken from its rotated copies (.1 the newest) when the file itself has fewer.</summary>
    public static List<string> Tail(string path, int count, int rotated) => Tail(path, count, rotated, out _);

    /// <inheritdoc cref="Tail(string, int, int)"/>
    /// <param name="read">How far the file itself was read: where following it goes on.</param>
    public static List<string> Tail(string path, int count, int rotated, out long read)
    {
        read = 0;
        var result = new List<string>();
        for (var i = 0; i <= rotated && result.Count < count; i++)
        {
            var file = i == 0 ? path : $"{path}.{i}";
            if (!File.Exists(file)) { if (i > 0) break; continue; }
            string[] all;
            using (var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var r = new StreamReader(s, Encoding.UTF8))
            {
                all = r.ReadToEnd().Split('\n');
                if (i == 0) read = s.Position;
            }
            var text = all.Length > 0 && all[^1].Length == 0 ? all[..^1] : all;
            result.InsertRange(0, text.Skip(Math.Max(0, text.Length - (count - result.Count))));
        }
        return result;
    }

    // Follows a file as `tail -F` does: new lines as they come; a rotation (the file shrank or was replaced) is read
    // from its start.
    private static async Task FollowAsync(string path, long offset, string prefix, CancellationToken ct)
    {
        var carry = "";
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            if (!File.Exists(path)) continue;
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (s.Length < offset) { offset = 0; carry = ""; }
            if (s.Length == offset) continue;
            s.Seek(offset, SeekOrigin.Begin);
            using var r = new StreamReader(s, Encoding.UTF8);
            var text = carry + await r.ReadToEndAsync(ct);
            offset = s.Position; // what was read, not the length now: a line written meanwhile is read next time
            var parts = text.Split('\n');
            carry = parts[^1];
            foreach (var line in parts[..^1]) Console.WriteLine(prefix + line);
        }
    }

    // Checks and events of any rule, merged by time, from the API; -f polls for what is new.
    private static async Task<int> ChecksAsync(string configPath, string rule, bool follow, int count, TimeSpan window, CancellationToken ct)
    {
        using var api = EngineApi.Open(configPath);
        if (api is null) return Bootstrap.ExitConfigInvalid;
        var from = DateTimeOffset.UtcNow - window;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var first = true;
        try
        {
            do
            {
                var history = await api.SendAsync(HttpMethod.Get, $"/api/rules/{Uri.EscapeDataString(rule)}/history?from={Uri.EscapeDataString(from.ToString("O"))}&limit={count}", ct, quiet: !first);
                var events = await api.SendAsync(HttpMethod.Get, "/api/events?limit=200", ct, quiet: true);
                if (history is null)
                {
                    if (first) Console.Error.WriteLine($"(`sentinel history {rule}` reads the checks from state/history.db while Sentinel is not running)");
                    return first ? 1 : 0;
                }
                var entries = new List<(DateTimeOffset At, string Key, string Line)>();
                if (history.Ok)
                    foreach (var c in history.Body.GetProperty("checks").EnumerateArray())
                    {
                        var at = c.GetProperty("at").GetDateTimeOffset();
                        entries.Add((at, "c" + at.UtcTicks, $"{Local(at)}  check  {c.GetProperty("status").GetString(),-9} {c.GetProperty("duration").GetString(),9}  "
                            + (c.TryGetProperty("description", out var d) ? d.GetString() : "")));
                    }
                if (events is { Ok: true })
                    foreach (var e in events.Body.EnumerateArray().Where(e => e.TryGetProperty("rule", out var r) && r.GetString() == rule))
                    {
                        var at = e.GetProperty("at").GetDateTimeOffset();
                        if (at < from) continue;
                        entries.Add((at, "e" + e.GetProperty("id").GetInt64(), $"{Local(at)}  {e.GetProperty("kind").GetString()}  {e.GetProperty("message").GetString()}"));
                    }
                var fresh = entries.Where(e => seen.Add(e.Key)).OrderBy(e => e.At).ToList();
                foreach (var (_, _, line) in first ? fresh.Skip(Math.Max(0, fresh.Count - count)) : fresh) Console.WriteLine(line);
                if (fresh.Count > 0) from = fresh.Max(e => e.At);
                first = false;
                if (follow) await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
            while (follow);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        return 0;
    }

    private static string Local(DateTimeOffset at) => at.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
}
