using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine.History;

namespace Sentinel.Bench;

/// <summary>
/// What status.json and the page pay for uptime once a month of history is in memory: N rules with one check an
/// hour for 30 days (720 hourly counts each), then every rule's uptime asked for, as each status write does.
/// Usage: <c>uptime [rules=10000] [rounds=20]</c>.
/// </summary>
internal static class UptimeBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rules = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
        var dir = Directory.CreateTempSubdirectory("sentinel-uptime-").FullName;
        try
        {
            var time = new ManualClock(DateTimeOffset.UtcNow - TimeSpan.FromDays(30));
            await using var store = SqliteHistoryStore.Open(Path.Combine(dir, "history.db"), NullLogger.Instance);
            await using var recorder = new HistoryRecorder(store, new HistorySettings(true, TimeSpan.FromDays(30), TimeSpan.FromDays(400), TimeSpan.FromHours(1)), time, NullLogger.Instance);
            for (var hour = 0; hour < 720; hour++)
            {
                for (var r = 0; r < rules; r++)
                    recorder.Record("r" + r, new CheckRecord(hour % 10 == 0 ? ProbeStatus.Unhealthy : ProbeStatus.Healthy, "ok", time.GetUtcNow(), TimeSpan.FromMilliseconds(3)), hour % 10 == 0 ? RuleStatus.Down : RuleStatus.Healthy);
                time.Now += TimeSpan.FromHours(1);
                if (hour % 24 == 23) await recorder.FlushAsync(); // written as it goes (every 30 s in `sentinel run`)
            }
            await recorder.FlushAsync();
            var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
            var names = Enumerable.Range(0, rules).Select(r => "r" + r).ToArray();
            double sum = 0;
            foreach (var n in names) sum += recorder.Uptime(n).Month ?? 0; // warm-up (and, cached, the first summing)
            Console.WriteLine($"live heap with 30 days of hourly counts in memory: {heapBefore / 1048576.0:F1} MB ({heapBefore / rules:N0} B a rule)");
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            for (var round = 0; round < rounds; round++)
                foreach (var n in names) sum += recorder.Uptime(n).Month ?? 0;
            var ms = clock.Elapsed.TotalMilliseconds / rounds;
            Console.WriteLine($"uptime of {rules:N0} rules with 720 hours each: {ms:F1} ms a round (every status write), CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / rounds:F1} ms; checksum {sum / (rounds + 1) / rules:F3}");
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
