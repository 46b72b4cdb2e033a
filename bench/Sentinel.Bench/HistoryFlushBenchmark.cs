using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine.History;

namespace Sentinel.Bench;

/// <summary>
/// What one history flush costs: N rules, each with a few new checks since the last flush (at 10,000 rules every 10 s
/// and the default 30 s flush: 3 each), over an SQLite history already holding D days of closed chunks (so that each
/// rule's open chunk sits on a page of its own, as after days of running). Prints the flushing thread's CPU and the
/// bytes the WAL grew a flush. Usage: <c>histflush [rules=10000] [checks-a-flush=3] [flushes=20] [days=0]</c>.
/// </summary>
internal static class HistoryFlushBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rules = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
        var perFlush = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        var flushes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 20;
        var days = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 0;
        var dir = Directory.CreateTempSubdirectory("sentinel-histflush-").FullName;
        try
        {
            var time = new ManualClock(DateTimeOffset.Parse("2026-11-01T00:00:00Z", CultureInfo.InvariantCulture));
            var path = Path.Combine(dir, "history.db");
            await using var store = SqliteHistoryStore.Open(path, NullLogger.Instance);
            await using var recorder = new HistoryRecorder(store, new HistorySettings(true, TimeSpan.FromDays(days + 30), TimeSpan.FromDays(400), TimeSpan.FromHours(1)), time, NullLogger.Instance);
            var names = Enumerable.Range(0, rules).Select(r => "r" + r).ToArray();
            void Round(TimeSpan step)
            {
                for (var c = 0; c < perFlush; c++)
                {
                    foreach (var n in names) recorder.Record(n, new CheckRecord(ProbeStatus.Healthy, "ok", time.Now, TimeSpan.FromMilliseconds(2)), RuleStatus.Healthy);
                    time.Now += step;
                }
            }
            // Days of history first: an hour of 64-check chunks a rule every simulated hour.
            for (var hour = 0; hour < days * 24; hour++)
            {
                for (var c = 0; c < 64; c++)
                    foreach (var n in names) recorder.Record(n, new CheckRecord(ProbeStatus.Healthy, "ok", time.Now + TimeSpan.FromSeconds(c), TimeSpan.FromMilliseconds(2)), RuleStatus.Healthy);
                time.Now += TimeSpan.FromHours(1);
                await recorder.FlushAsync();
            }
            Round(TimeSpan.FromSeconds(10));
            await recorder.FlushAsync();
            var wal = path + "-wal";
            double cpuMs = 0, walBytes = 0;
            for (var f = 0; f < flushes; f++)
            {
                Round(TimeSpan.FromSeconds(10));
                var walBefore = File.Exists(wal) ? new FileInfo(wal).Length : 0;
                var cpu = ThreadCpu.Now();
                await recorder.FlushAsync();
                cpuMs += (ThreadCpu.Now() - cpu).TotalMilliseconds;
                var walAfter = File.Exists(wal) ? new FileInfo(wal).Length : 0;
                walBytes += Math.Max(0, walAfter - walBefore);
            }
            Console.WriteLine($"history flush, {rules:N0} rules x {perFlush} new checks, {days} days stored: {cpuMs / flushes:F1} ms of the flushing thread's CPU a flush "
                + $"({cpuMs * 1000 / flushes / rules:F1} µs a rule), WAL +{walBytes / flushes / 1024:N0} KB a flush (while it grows), history.db {new FileInfo(path).Length / 1048576.0:F1} MB");
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
