using System.Diagnostics;
using System.Globalization;
using static Sentinel.Bench.RestartBenchmark;

namespace Sentinel.Bench;

/// <summary>
/// How soon the people are told, end to end with real processes: the real `sentinel run`, a real SMTP server
/// (aiosmtpd writing a maildir), real files.
/// <list type="bullet">
/// <item><c>alert crash [trials=20]</c>: SIGKILL of a supervised service to its CRASHED mail accepted, with
/// <c>alert-on: [exited]</c> and <c>group-wait: 0s</c>; beside it monit (<c>set daemon 1</c>, mail on every
/// event), which mails "does not exist" for the same kill.</item>
/// <item><c>alert traceback [trials=3]</c>: a Python Traceback appended to a log to its mail accepted, a
/// log-regex rule with every default (<c>every: 30s</c>, <c>group-wait: 30s</c>).</item>
/// </list>
/// </summary>
internal static class AlertBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var mode = args.Length > 0 ? args[0] : "crash";
        var trials = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : mode == "crash" ? 20 : 3;
        var work = Directory.CreateTempSubdirectory("sentinel-alert-bench-").FullName;
        try
        {
            var rows = new List<(string Name, List<double> Ms)>();
            if (mode == "crash")
            {
                rows.Add(("sentinel (alert-on: [exited], group-wait: 0s)", await CrashAsync(work, trials, monit: false)));
                if (File.Exists("/usr/bin/monit")) rows.Add(("monit (set daemon 1)", await CrashAsync(work, trials, monit: true)));
                else Console.Error.WriteLine("monit is not installed (apt-get install -y monit): measured Sentinel alone");
            }
            else if (mode == "traceback") rows.Add(("sentinel (log-regex, every default)", await TracebackAsync(work, trials)));
            else
            {
                Console.Error.WriteLine("usage: alert crash [trials=20] | alert traceback [trials=3]");
                return 2;
            }
            Console.WriteLine();
            Console.WriteLine("| | trials | median | p95 | min | max |");
            Console.WriteLine("|---|---|---|---|---|---|");
            foreach (var (name, ms) in rows)
                Console.WriteLine($"| {name} | {ms.Count} | {Show(Pct(ms, 50))} | {Show(Pct(ms, 95))} | {Show(ms.Min())} | {Show(ms.Max())} |");
            return 0;
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    private static string Show(double ms) => ms < 10_000 ? $"{ms:F0} ms" : $"{ms / 1000:F1} s";

    private static async Task<List<double>> CrashAsync(string work, int trials, bool monit)
    {
        var dir = Directory.CreateDirectory(Path.Combine(work, Guid.NewGuid().ToString("N")[..8])).FullName;
        using var smtp = Smtp(dir, out var maildir, out var smtpPort);
        var port = FreePort();
        var pidfile = Path.Combine(dir, "svc.pid");
        var supervisor = monit
            ? RunMonit(dir, port, pidfile, $"set mailserver 127.0.0.1 port {smtpPort}\nset alert ops@example.test")
            : RunSentinel(dir, $"notifications: {{ group-wait: 0s }}\n{MailChannel(smtpPort)}\nrules:\n"
                + SupervisedRule("bot", port, pidfile, ", alert-on: [exited], notify: [{ channel: mail }]") + "\n");
        var ms = new List<double>();
        try
        {
            await Until(() => ReadPid(pidfile) is { } p && Alive(p), TimeSpan.FromSeconds(60), "the service started");
            await Task.Delay(3000); // monit mails its own start-up events; let them arrive before counting
            for (var i = 0; i < trials; i++)
            {
                var pid = ReadPid(pidfile)!.Value;
                var before = Mails(maildir);
                var sw = Stopwatch.StartNew();
                Kill(pid);
                await Until(() => Mails(maildir) > before, TimeSpan.FromSeconds(60), "a mail");
                ms.Add(sw.Elapsed.TotalMilliseconds);
                Console.Error.WriteLine($"{(monit ? "monit" : "sentinel")} trial {i + 1}: {sw.Elapsed.TotalMilliseconds:F0} ms");
                // Restarted, and stable for each supervisor's notion of it (and monit's follow-up mails in), before the next kill.
                await Until(() => ReadPid(pidfile) is { } now && now != pid && Alive(now), TimeSpan.FromSeconds(60), "the restart");
                await Task.Delay(3000);
            }
        }
        finally
        {
            supervisor.Kill(entireProcessTree: true);
            await supervisor.WaitForExitAsync();
            if (ReadPid(pidfile) is { } left) Kill(left);
            smtp.Kill();
        }
        return ms;
    }

    private static async Task<List<double>> TracebackAsync(string work, int trials)
    {
        var dir = Directory.CreateDirectory(Path.Combine(work, Guid.NewGuid().ToString("N")[..8])).FullName;
        using var smtp = Smtp(dir, out var maildir, out var smtpPort);
        var log = Path.Combine(dir, "bot.log");
        File.WriteAllText(log, "2026-12-01 10:00:00 INFO started\n");
        using var sentinel = RunSentinel(dir, $"""
            {MailChannel(smtpPort)}
            rules:
              - name: bot-errors
                probe: {"{"} type: log-regex, with: {"{"} path: "{log}", pattern: Traceback, context-after: 20 {"}"} {"}"}
                notify: [{"{"} channel: mail {"}"}]
            """);
        var ms = new List<double>();
        try
        {
            await Task.Delay(5000); // started and the first check made (it reads from the end of the file)
            for (var i = 0; i < trials; i++)
            {
                var before = Mails(maildir);
                var sw = Stopwatch.StartNew();
                File.AppendAllText(log, "2026-12-01 10:00:01 ERROR Exception in command 'vote'\nTraceback (most recent call last):\n"
                    + "  File \"/srv/bot/bot.py\", line 42, in vote\n    user = users[ctx.author]\nKeyError: 'alice'\n");
                await Until(() => Mails(maildir) > before, TimeSpan.FromMinutes(3), "a mail");
                ms.Add(sw.Elapsed.TotalMilliseconds);
                Console.Error.WriteLine($"traceback trial {i + 1}: {sw.Elapsed.TotalSeconds:F1} s");
                // The rule heals at the next checks; a new incident needs it healthy first, so the next trial starts
                // at a random point of the 30s check cycle.
                await Task.Delay(TimeSpan.FromSeconds(65 + Random.Shared.Next(0, 30)));
            }
        }
        finally
        {
            sentinel.Kill(entireProcessTree: true);
            await sentinel.WaitForExitAsync();
            smtp.Kill();
        }
        return ms;
    }

    private static Process Smtp(string dir, out string maildir, out int port)
    {
        maildir = Path.Combine(dir, "maildir");
        foreach (var sub in new[] { "tmp", "new", "cur" }) Directory.CreateDirectory(Path.Combine(maildir, sub));
        port = FreePort();
        return Start("/usr/bin/python3", ["-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox", maildir], dir);
    }

    // One line of YAML: the `mail` channel to the local SMTP server.
    private static string MailChannel(int smtpPort)
        => $"channels: [{{ name: mail, type: email, with: {{ host: 127.0.0.1, port: {smtpPort}, tls: none, from: alerts@example.test, to: [ops@example.test] }} }}]";

    private static int Mails(string maildir) => Directory.GetFiles(Path.Combine(maildir, "new")).Length;

    private static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    private static async Task Until(Func<bool> condition, TimeSpan limit, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > limit) throw new TimeoutException($"{what}: not within {limit}");
            await Task.Delay(1);
        }
    }
}
