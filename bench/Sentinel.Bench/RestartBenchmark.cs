using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sentinel.Bench;

/// <summary>
/// Time from SIGKILL of a supervised HTTP service to its /health answering again, under Sentinel, supervisord and
/// monit side by side (each a foreground process with a config of its own), plus the service's own start-up time
/// as the floor. Usage: <c>restart [trials=20]</c>.
/// </summary>
internal static class RestartBenchmark
{
    internal static readonly string Root = FindRoot();
    internal static readonly string Service = Path.Combine(Root, "tests", "services", "testservice.py");
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromMilliseconds(500) };

    public static async Task<int> RunAsync(string[] args)
    {
        var trials = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
        var work = Directory.CreateTempSubdirectory("sentinel-restart-bench-").FullName;
        var results = new List<(string Name, List<double> Ms)>();
        try
        {
            results.Add(("service start-up alone (floor)", await StartupFloorAsync(work, trials)));
            foreach (var supervisor in new Func<string, int, string, Process>[] { StartSentinel, StartSupervisord, StartMonit })
            {
                var port = FreePort();
                var dir = Directory.CreateDirectory(Path.Combine(work, Guid.NewGuid().ToString("N")[..8])).FullName;
                var pidfile = Path.Combine(dir, "svc.pid");
                using var process = supervisor(dir, port, pidfile);
                var name = process.StartInfo.ArgumentList.Count > 0 && process.StartInfo.FileName == "dotnet" ? "sentinel" : Path.GetFileName(process.StartInfo.FileName);
                try
                {
                    results.Add((name, await TrialsAsync(name, port, pidfile, trials)));
                }
                finally
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                    if (ReadPid(pidfile) is { } left) Kill(left);
                }
            }
        }
        finally { Directory.Delete(work, recursive: true); }

        Console.WriteLine();
        Console.WriteLine($"| supervisor | trials | median | p95 | min | max |");
        Console.WriteLine($"|---|---|---|---|---|---|");
        foreach (var (name, ms) in results)
            Console.WriteLine($"| {name} | {ms.Count} | {Pct(ms, 50):F0} ms | {Pct(ms, 95):F0} ms | {ms.Min():F0} ms | {ms.Max():F0} ms |");
        return 0;
    }

    // How long the service itself takes from exec to answering /health: what no supervisor can beat.
    private static async Task<List<double>> StartupFloorAsync(string work, int trials)
    {
        var ms = new List<double>();
        for (var i = 0; i < trials; i++)
        {
            var port = FreePort();
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(new ProcessStartInfo("/usr/bin/python3", [Service, "--port", port.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true })!;
            await UntilHealthyAsync(port, TimeSpan.FromSeconds(10));
            ms.Add(sw.Elapsed.TotalMilliseconds);
            p.Kill();
            await p.WaitForExitAsync();
        }
        return ms;
    }

    private static async Task<List<double>> TrialsAsync(string name, int port, string pidfile, int trials)
    {
        await UntilHealthyAsync(port, TimeSpan.FromSeconds(30));
        var ms = new List<double>();
        for (var i = 0; i < trials; i++)
        {
            // Let the service count as stable (each supervisor's own notion: 1s) before killing it again.
            // (monit runs its start program to completion, so it is given one that backgrounds the service, as monit expects.)
            await Task.Delay(1500);
            var pid = ReadPid(pidfile) ?? throw new InvalidOperationException($"{name}: no pidfile");
            var sw = Stopwatch.StartNew();
            Kill(pid);
            await UntilHealthyAsync(port, TimeSpan.FromSeconds(30), notPid: pid, pidfile);
            ms.Add(sw.Elapsed.TotalMilliseconds);
            Console.Error.WriteLine($"{name} trial {i + 1}: {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
        return ms;
    }

    private static async Task UntilHealthyAsync(int port, TimeSpan limit, int? notPid = null, string? pidfile = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < limit)
        {
            if (notPid is null || (ReadPid(pidfile!) is { } now && now != notPid))
            {
                try
                {
                    using var r = await Http.GetAsync($"http://127.0.0.1:{port}/health");
                    if (r.StatusCode == HttpStatusCode.OK) return;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            }
            await Task.Delay(2);
        }
        throw new TimeoutException($"port {port} did not answer within {limit}");
    }

    private static Process StartSentinel(string dir, int port, string pidfile) => RunSentinel(dir, "rules:\n" + SupervisedRule("svc", port, pidfile) + "\n");

    /// <summary>One line of YAML: a rule supervising the test service, restarted at once after each kill, stopped with Sentinel.</summary>
    internal static string SupervisedRule(string name, int port, string pidfile, string extra = "")
        => $"  - {{ name: {name}, every: 5s, supervise: {{ command: [/usr/bin/python3, \"{Service}\", --port, \"{port}\", --pid-file, \"{pidfile}\"], stop-on-exit: true }}, "
            + $"restart-budget: {{ max: 1000, within: 1m, stable-after: 1s }}{extra} }}";

    /// <summary>`sentinel run` on <paramref name="yaml"/> (channels, rules...) after an engine block for a bench: no HTTP, state in <paramref name="dir"/>.</summary>
    internal static Process RunSentinel(string dir, string yaml)
    {
        var config = Path.Combine(dir, "sentinel.yaml");
        File.WriteAllText(config, $"""
            engine:
              http: {"{"} enabled: false {"}"}
              plugins: "{Path.Combine(Root, "plugins")}"
              state: state
              log: {"{"} directory: "" {"}"}

            """ + yaml);
        var dll = Path.Combine(Root, "artifacts", "bin", "Sentinel.Host", "release", "sentinel.dll");
        return Start("dotnet", [dll, "run", "--config", config], dir);
    }

    private static Process StartSupervisord(string dir, int port, string pidfile)
    {
        var config = Path.Combine(dir, "supervisord.conf");
        File.WriteAllText(config, $"""
            [supervisord]
            nodaemon=true
            logfile={dir}/supervisord.log
            pidfile={dir}/supervisord.pid
            childlogdir={dir}

            [program:svc]
            command=/usr/bin/python3 {Service} --port {port} --pid-file {pidfile}
            autorestart=true
            startsecs=1
            startretries=1000
            """);
        return Start("/usr/bin/supervisord", ["-c", config], dir);
    }

    private static Process StartMonit(string dir, int port, string pidfile) => RunMonit(dir, port, pidfile, "");

    /// <summary>monit in the foreground on its shortest cycle (1s), watching the test service by its pidfile; <paramref name="settings"/> adds `set` lines.</summary>
    internal static Process RunMonit(string dir, int port, string pidfile, string settings)
        // monit runs its start program to completion, so it is given one that backgrounds the service, as monit expects.
        => MonitWith(dir, $"""
            {settings}
            check process svc with pidfile {pidfile}
              start program = "/bin/sh -c '/usr/bin/python3 {Service} --port {port} --pid-file {pidfile} >/dev/null 2>&1 &'"
            """);

    /// <summary>monit in the foreground on its shortest cycle (1s), its files in <paramref name="dir"/>, with <paramref name="checks"/> (monitrc lines).</summary>
    internal static Process MonitWith(string dir, string checks)
    {
        var config = Path.Combine(dir, "monitrc");
        File.WriteAllText(config, $"set daemon 1\nset logfile {dir}/monit.log\nset pidfile {dir}/monit.pid\nset idfile {dir}/monit.id\nset statefile {dir}/monit.state\n" + checks + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return Start("/usr/bin/monit", ["-I", "-c", config], dir);
    }

    internal static Process Start(string file, string[] args, string dir)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    internal static int? ReadPid(string pidfile)
    {
        try { return int.Parse(File.ReadAllText(pidfile).Trim(), CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or FormatException) { return null; }
    }

    internal static void Kill(int pid)
    {
        try { Process.GetProcessById(pid).Kill(); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { }
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    internal static double Pct(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p / 100 * sorted.Count) - 1)];
    }

    private static string FindRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Sentinel.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("run from inside the repository");
    }
}
