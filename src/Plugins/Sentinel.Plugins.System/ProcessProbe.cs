using System.Globalization;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

internal sealed class ProcessProbe(ProcessProbeOptions options) : IProbe
{
    // /proc start times come from a whole-second boot time and clock ticks: allow for that before calling a PID reused.
    private static readonly TimeSpan StartTimeSlack = TimeSpan.FromSeconds(2);

    private readonly Regex? _match = options.Match is null ? null : new Regex(options.Match, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    private readonly Dictionary<int, (TimeSpan Cpu, long Timestamp)> _lastCpu = [];

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (!ProcFs.Available) return ValueTask.FromResult(ProbeResult.Unhealthy("the process probe reads /proc, which this system does not have"));
        var found = options.Pidfile is not null ? FromPidfile(out var problem) : Scan(cancellationToken, out problem);
        return ValueTask.FromResult(found is null ? ProbeResult.Unhealthy(problem) : Judge(found, context));
    }

    private List<ProcInfo>? FromPidfile(out string problem)
    {
        problem = "";
        string text;
        try { text = File.ReadAllText(options.Pidfile!); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            problem = $"pidfile {options.Pidfile} does not exist: the process is not running (or writes its pidfile elsewhere)";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"pidfile {options.Pidfile} cannot be read: {e.Message}";
            return null;
        }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            problem = $"pidfile {options.Pidfile} does not hold a PID (it holds '{Shorten(text.Trim(), 40)}')";
            return null;
        }
        var info = ProcFs.Read(pid);
        if (info is null) return [];
        if (info.IsZombie)
        {
            problem = $"pid {pid} from {options.Pidfile} is a zombie: it exited and its parent has not reaped it";
            return null;
        }
        if (_match is not null && !_match.IsMatch(info.CommandLine))
        {
            problem = $"pid {pid} from {options.Pidfile} now belongs to another program ('{Shorten(info.CommandLine, 80)}' does not match '{options.Match}'): the process is not running";
            return null;
        }
        var written = File.GetLastWriteTimeUtc(options.Pidfile!);
        if (info.StartTime > written + StartTimeSlack)
        {
            problem = $"pid {pid} from {options.Pidfile} belongs to a process started {info.StartTime:u}, after the pidfile was written ({written:u}): the PID was reused, the process is not running";
            return null;
        }
        return [info];
    }

    private List<ProcInfo> Scan(CancellationToken cancellationToken, out string problem)
    {
        problem = "";
        var self = Environment.ProcessId;
        var result = new List<ProcInfo>();
        foreach (var pid in ProcFs.Pids())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (pid == self) continue;
            var info = ProcFs.Read(pid);
            if (info is null || info.IsZombie) continue;
            if (options.Name is not null && info.Comm != options.Name && info.ExeName != options.Name
                && Path.GetFileName(info.CommandLine.Split(' ')[0]) != options.Name) continue;
            if (_match is not null && !_match.IsMatch(info.CommandLine)) continue;
            result.Add(info);
        }
        return result;
    }

    private ProbeResult Judge(List<ProcInfo> found, ProbeContext context)
    {
        var what = options.Pidfile is not null ? $"pidfile {options.Pidfile}" : options.Name is not null ? $"name '{options.Name}'" : $"match '{options.Match}'";
        var now = context.TimeProvider.GetUtcNow();
        var stamp = context.TimeProvider.GetTimestamp();
        found.Sort((a, b) => a.StartTime.CompareTo(b.StartTime));
        double cpu = 0;
        foreach (var p in found)
        {
            if (_lastCpu.TryGetValue(p.Pid, out var last))
            {
                var elapsed = context.TimeProvider.GetElapsedTime(last.Timestamp, stamp).TotalSeconds;
                if (elapsed > 0) cpu += (p.CpuTime - last.Cpu).TotalSeconds / elapsed * 100;
            }
        }
        _lastCpu.Clear();
        foreach (var p in found) _lastCpu[p.Pid] = (p.CpuTime, stamp);

        var data = new Dictionary<string, object> { ["count"] = found.Count };
        if (found.Count > 0)
        {
            var oldest = found[0];
            data["pid"] = oldest.Pid;
            data["pids"] = found.Select(p => (object)p.Pid).ToList();
            data["uptime"] = now - oldest.StartTime;
            data["cpu"] = Math.Round(cpu, 2);
            data["rss"] = new ByteSize(found.Sum(p => p.RssBytes));
            data["threads"] = found.Sum(p => p.Threads);
            data["command"] = oldest.CommandLine;
        }
        var max = options.Pidfile is not null ? 1 : options.Max;
        if (found.Count < options.Min)
        {
            var text = found.Count == 0
                ? options.Pidfile is not null ? $"no process with the PID in {options.Pidfile}: the process is not running" : $"no process matches {what}"
                : $"{found.Count} process(es) match {what}, at least {options.Min} expected";
            return ProbeResult.Unhealthy(text, null, data);
        }
        if (max is { } m && found.Count > m)
            return ProbeResult.Unhealthy($"{found.Count} processes match {what}, at most {m} expected (pids {string.Join(", ", found.Select(p => p.Pid))})", null, data);
        return ProbeResult.Healthy(found.Count == 1
            ? $"pid {found[0].Pid} up {FormatUptime(now - found[0].StartTime)}"
            : $"{found.Count} processes (pids {string.Join(", ", found.Select(p => p.Pid))})", data);
    }

    private static string FormatUptime(TimeSpan t) => t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h" : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes}m" : $"{(int)t.TotalMinutes}m{t.Seconds}s";

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 3)] + "...";
}
