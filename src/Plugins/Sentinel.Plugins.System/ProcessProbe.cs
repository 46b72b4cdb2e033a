using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.System;

internal sealed class ProcessProbe(ProcessProbeOptions options) : IProbe
{
    private readonly ProcessFinder _finder = new(options);
    private readonly Dictionary<int, (TimeSpan Cpu, long Timestamp)> _lastCpu = [];

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (!ProcFs.Available) return ValueTask.FromResult(ProbeResult.Unhealthy("the process probe reads /proc, which this system does not have"));
        var scope = _finder.Scope(context);
        if (scope.Instead is { } instead) return ValueTask.FromResult(instead);
        var found = _finder.Find(cancellationToken, out var problem, scope.Session);
        return ValueTask.FromResult(found is null ? ProbeResult.Unhealthy(problem) : Judge(found, context, scope.Session));
    }

    private ProbeResult Judge(List<ProcInfo> found, ProbeContext context, int? session)
    {
        var what = _finder.Describe(session);
        var now = context.TimeProvider.GetUtcNow();
        var stamp = context.TimeProvider.GetTimestamp();
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
            ? $"pid {found[0].Pid} up {PluginText.Duration(now - found[0].StartTime)}"
            : $"{found.Count} processes (pids {string.Join(", ", found.Select(p => p.Pid))})", data);
    }
}
