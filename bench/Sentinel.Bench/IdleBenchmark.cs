using System.Diagnostics;
using System.Globalization;

namespace Sentinel.Bench;

/// <summary>
/// What a watchdog costs when nothing goes wrong: 10 supervised services (the test service), each checked every
/// second, under Sentinel, monit (<c>set daemon 1</c>, <c>check process</c>) and supervisord side by side, one after
/// the other. After a warm-up, the supervisor's own process (not its services) is sampled from /proc: CPU (utime +
/// stime over the wall time) and RSS (mean and peak). Usage: <c>idle [seconds=60] [services=10] [warm-up=120]</c>: the
/// warm-up outlasts .NET's tiered compilation (still recompiling hot methods a minute in), so the figure is a daemon's
/// steady state, which is what it costs for months.
/// </summary>
internal static class IdleBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 60;
        var services = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
        var warmUp = TimeSpan.FromSeconds(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 120);
        var work = Directory.CreateTempSubdirectory("sentinel-idle-bench-").FullName;
        var rows = new List<string>();
        try
        {
            foreach (var (name, start) in new (string, Func<string, List<(int Port, string Pidfile)>, Process>)[] { ("sentinel", Sentinel), ("monit 5", Monit), ("supervisord", Supervisord) })
            {
                if (name != "sentinel" && !File.Exists(name == "monit 5" ? "/usr/bin/monit" : "/usr/bin/supervisord"))
                {
                    Console.Error.WriteLine($"{name} is not installed (apt-get install -y monit supervisor): skipped");
                    continue;
                }
                var dir = Directory.CreateDirectory(Path.Combine(work, name.Replace(' ', '-'))).FullName;
                var targets = Enumerable.Range(0, services).Select(i => (Port: RestartBenchmark.FreePort(), Pidfile: Path.Combine(dir, $"svc{i}.pid"))).ToList();
                using var process = start(dir, targets);
                try
                {
                    await Task.Delay(warmUp); // start-up, JIT and tiering, first checks
                    var up = targets.Count(t => RestartBenchmark.ReadPid(t.Pidfile) is { } pid && File.Exists($"/proc/{pid}/stat"));
                    var (cpu, meanRss, peakRss) = await SampleAsync(process.Id, TimeSpan.FromSeconds(seconds));
                    rows.Add($"| {name} | {up} of {services} | {cpu:F2}% | {meanRss:F1} MiB | {peakRss:F1} MiB |");
                    Console.Error.WriteLine(rows[^1]);
                }
                finally
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                    foreach (var (_, pidfile) in targets)
                        if (RestartBenchmark.ReadPid(pidfile) is { } left) RestartBenchmark.Kill(left);
                }
            }
        }
        finally { Directory.Delete(work, recursive: true); }
        Console.WriteLine();
        Console.WriteLine($"{services} supervised services, checked every 1s, {seconds}s measured after {warmUp.TotalSeconds:F0}s:");
        Console.WriteLine("| supervisor | services running | CPU (of one core) | RSS mean | RSS peak |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var row in rows) Console.WriteLine(row);
        return 0;
    }

    // CPU of the process itself (its threads, not its children) over the period, and its resident memory every 200ms.
    internal static async Task<(double Cpu, double MeanRss, double PeakRss)> SampleAsync(int pid, TimeSpan period)
    {
        var ticksPerSecond = 100.0; // USER_HZ on Linux
        var startTicks = CpuTicks(pid);
        var clock = Stopwatch.StartNew();
        var rss = new List<double>();
        while (clock.Elapsed < period)
        {
            rss.Add(RssMiB(pid));
            await Task.Delay(200);
        }
        var cpu = (CpuTicks(pid) - startTicks) / ticksPerSecond / clock.Elapsed.TotalSeconds * 100;
        return (cpu, rss.Average(), rss.Max());
    }

    internal static long CpuTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
    }

    internal static double RssMiB(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return 0;
    }

    private static Process Sentinel(string dir, List<(int Port, string Pidfile)> targets)
        => RestartBenchmark.RunSentinel(dir, "rules:\n" + string.Join("\n", targets.Select((t, i) => RestartBenchmark.SupervisedRule($"svc{i}", t.Port, t.Pidfile).Replace("every: 5s", "every: 1s", StringComparison.Ordinal))) + "\n");

    private static Process Monit(string dir, List<(int Port, string Pidfile)> targets)
        => RestartBenchmark.MonitWith(dir, string.Concat(targets.Select((t, i) => $"check process svc{i} with pidfile {t.Pidfile}\n"
            + $"  start program = \"/bin/sh -c '/usr/bin/python3 {RestartBenchmark.Service} --port {t.Port} --pid-file {t.Pidfile} >/dev/null 2>&1 &'\"\n")));

    private static Process Supervisord(string dir, List<(int Port, string Pidfile)> targets)
    {
        var config = Path.Combine(dir, "supervisord.conf");
        File.WriteAllText(config, $"[supervisord]\nnodaemon=true\nlogfile={dir}/supervisord.log\npidfile={dir}/supervisord.pid\nchildlogdir={dir}\n\n"
            + string.Concat(targets.Select((t, i) => $"[program:svc{i}]\ncommand=/usr/bin/python3 {RestartBenchmark.Service} --port {t.Port} --pid-file {t.Pidfile}\nautorestart=true\nstartsecs=1\n\n")));
        return RestartBenchmark.Start("/usr/bin/supervisord", ["-c", config], dir);
    }
}
