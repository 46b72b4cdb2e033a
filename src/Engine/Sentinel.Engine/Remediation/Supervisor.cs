using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Remediation;

/// <summary>How a supervised process ended. <see cref="ExitCode"/> is unknown (null) for an adopted process.</summary>
internal sealed record SupervisorExit(SupervisedProcess Process, int? ExitCode, DateTimeOffset At)
{
    public bool Failed => ExitCode is not 0;

    public string Describe() => ExitCode switch
    {
        null => "exited (status unknown: it was adopted from an earlier Sentinel)",
        > 128 and < 160 => $"was killed by signal {ExitCode - 128} (exit code {ExitCode})",
        _ => $"exited with code {ExitCode}",
    };
}

/// <summary>
/// Runs one service for a rule: starts it in a session of its own (so a terminal's Ctrl-C or Sentinel's own stop
/// does not reach it) with stdout/stderr appended to log files, writes its pidfile, learns of its exit at once
/// (its own child: the runtime's SIGCHLD handling; an adopted one: a pidfd), stops it with stop-signal then
/// KILL, and rotates its log files. Policy (whether and when to restart) is the caller's.
/// </summary>
internal sealed partial class Supervisor : IAsyncDisposable
{
    private const string Launcher = "o=$1; e=$2; shift 2; if [ \"$e\" = \"$o\" ]; then exec setsid \"$@\" </dev/null >>\"$o\" 2>&1; else exec setsid \"$@\" </dev/null >>\"$o\" 2>>\"$e\"; fi";
    private static readonly TimeSpan RotateEvery = TimeSpan.FromSeconds(10);

    private readonly string _rule;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Action<SupervisorExit> _onExit;
    private readonly Lock _lock = new();
    private readonly ITimer _rotation;
    private Watch? _watch;
    private SupervisorExit? _lastExit;
    private int _disposed;

    public Supervisor(string rule, SuperviseSpec spec, ILogger logger, TimeProvider time, Action<SupervisorExit> onExit)
    {
        _rule = rule;
        Spec = spec;
        _logger = logger;
        _time = time;
        _onExit = onExit;
        _rotation = time.CreateTimer(_ => RotateLogs(), null, RotateEvery, RotateEvery);
    }

    public SuperviseSpec Spec { get; set; }

    public SupervisedProcess? Current
    {
        get { lock (_lock) return _watch?.Process; }
    }

    public bool IsRunning => Current is { } p && NativeProcess.IsAlive(p.Pid, p.StartTicks);

    /// <summary>Starts the service; throws with a clear message when it cannot be started at all.</summary>
    public SupervisedProcess Start()
    {
        lock (_lock)
        {
            if (_watch is { } running && NativeProcess.IsAlive(running.Process.Pid, running.Process.StartTicks)) return running.Process;
            var spec = Spec;
            var program = spec.Shell ? "/bin/sh" : spec.Command[0];
            if (NativeProcess.Which(program) is null)
                throw new InvalidOperationException($"cannot start '{program}': no such program" + (program.Contains('/') ? "" : " on PATH") + " (give a full path, or fix supervise.command)");
            foreach (var file in new[] { spec.Stdout!, spec.Stderr!, spec.Pidfile! }) Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            RotateLogs();

            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = spec.Cwd ?? "" };
            foreach (var a in new[] { "-c", Launcher, "sentinel-supervise", spec.Stdout!, spec.Stderr! }) psi.ArgumentList.Add(a);
            if (spec.Shell) { psi.ArgumentList.Add("/bin/sh"); psi.ArgumentList.Add("-c"); psi.ArgumentList.Add(spec.Command[0]); }
            else foreach (var a in spec.Command) psi.ArgumentList.Add(a);
            foreach (var (k, v) in spec.Env) psi.Environment[k] = v;
            psi.Environment["SENTINEL_RULE"] = _rule;

            var process = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"'{program}' could not be started");
            var pid = process.Id;
            var stat = NativeProcess.Stat(pid);
            var started = new SupervisedProcess(pid, stat?.StartTicks ?? -1, _time.GetUtcNow());
            StatusFile.WriteAtomic(spec.Pidfile!, s => s.Write(Encoding.ASCII.GetBytes(pid + "\n")), shared: true);
            LogStarted(_logger, _rule, pid, string.Join(' ', spec.Command));
            _watch = new Watch(started, process, null);
            _ = WatchOwnAsync(_watch);
            return started;
        }
    }

    /// <summary>
    /// Takes over a process started by an earlier Sentinel, if the pidfile still names it and the kernel's start
    /// time matches (a PID reused by another program is never adopted).
    /// </summary>
    public bool TryAdopt(SupervisedProcess recorded)
    {
        lock (_lock)
        {
            if (!File.Exists(Spec.Pidfile) || !int.TryParse(File.ReadAllText(Spec.Pidfile!).Trim(), out var pid) || pid != recorded.Pid) return false;
            if (!NativeProcess.IsAlive(recorded.Pid, recorded.StartTicks)) return false;
            var wake = new NativeProcess.WakeHandle();
            _watch = new Watch(recorded, null, wake);
            var watch = _watch;
            new Thread(() => WatchAdopted(watch)) { IsBackground = true, Name = "sentinel-adopted-" + _rule }.Start();
            LogAdopted(_logger, _rule, recorded.Pid);
            return true;
        }
    }

    /// <summary>
    /// A service left running by a Sentinel that was killed before it could record it: the pidfile names a live
    /// process that started when the pidfile was written and runs the configured program. Null otherwise.
    /// </summary>
    public SupervisedProcess? FindLeftover()
    {
        try
        {
            if (!File.Exists(Spec.Pidfile) || !int.TryParse(File.ReadAllText(Spec.Pidfile!).Trim(), out var pid)) return null;
            if (NativeProcess.Stat(pid) is not { Zombie: false } stat) return null;
            var started = NativeProcess.StartTime(stat.StartTicks);
            var written = File.GetLastWriteTimeUtc(Spec.Pidfile!);
            if (started > written + TimeSpan.FromSeconds(2) || started < written - TimeSpan.FromSeconds(30)) return null;
            var program = Path.GetFileName(Spec.Shell ? "sh" : Spec.Command[0]);
            return NativeProcess.CommandLine(pid).Contains(program, StringComparison.Ordinal) ? new SupervisedProcess(pid, stat.StartTicks, started) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private async Task WatchOwnAsync(Watch watch)
    {
        try { await watch.Own!.WaitForExitAsync(); }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        int? code = null;
        try { code = watch.Own!.ExitCode; } catch (InvalidOperationException) { }
        watch.Own!.Dispose();
        Exited(watch, code);
    }

    private void WatchAdopted(Watch watch)
    {
        try
        {
            if (!NativeProcess.WaitForExit(watch.Process.Pid, watch.Process.StartTicks, watch.Wake!)) return;
        }
        catch (Exception ex)
        {
            LogWatchFailed(_logger, _rule, watch.Process.Pid, ex);
            return;
        }
        Exited(watch, null);
    }

    private void Exited(Watch watch, int? code)
    {
        var exit = new SupervisorExit(watch.Process, code, _time.GetUtcNow());
        lock (_lock)
        {
            if (!ReferenceEquals(_watch, watch)) return;
            _watch = null;
            _lastExit = exit;
        }
        watch.Wake?.Dispose();
        watch.Exited.TrySetResult(exit);
        if (watch.Expected || Volatile.Read(ref _disposed) == 1) return;
        LogExited(_logger, _rule, watch.Process.Pid, exit.Describe());
        _onExit(exit);
    }

    /// <summary>The exit of <paramref name="process"/> if it happens within <paramref name="within"/>; null if it is still running then.</summary>
    public async Task<SupervisorExit?> WaitForExitAsync(SupervisedProcess process, TimeSpan within, CancellationToken cancellationToken)
    {
        Watch? watch;
        SupervisorExit? last;
        lock (_lock) (watch, last) = (_watch, _lastExit);
        if (watch is null || watch.Process != process)
        {
            // It may have exited (and been reported) before this was called.
            if (last?.Process == process) return last;
            return NativeProcess.IsAlive(process.Pid, process.StartTicks) ? null : new SupervisorExit(process, null, _time.GetUtcNow());
        }
        var delay = Task.Delay(within, _time, cancellationToken);
        return await Task.WhenAny(watch.Exited.Task, delay) == watch.Exited.Task ? await watch.Exited.Task : null;
    }

    /// <summary>Stops the service: stop-signal to its process group, KILL after stop-timeout. Its exit is not reported as a crash.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        Watch? watch;
        lock (_lock) watch = _watch;
        if (watch is null) return;
        watch.Expected = true;
        var pid = watch.Process.Pid;
        // The service leads its own session, so -pid reaches the processes it started too.
        if (!NativeProcess.Signal(-pid, NativeProcess.Number(Spec.StopSignal))) NativeProcess.Signal(pid, NativeProcess.Number(Spec.StopSignal));
        var timeout = Task.Delay(Spec.StopTimeout, _time, cancellationToken);
        if (await Task.WhenAny(watch.Exited.Task, timeout) != watch.Exited.Task)
        {
            LogKilled(_logger, _rule, pid, Duration.Format(Spec.StopTimeout));
            if (!NativeProcess.Signal(-pid, NativeProcess.SigKill)) NativeProcess.Signal(pid, NativeProcess.SigKill);
            await watch.Exited.Task.WaitAsync(TimeSpan.FromSeconds(10), _time, cancellationToken);
        }
        TryDelete(Spec.Pidfile!);
    }

    /// <summary>The last lines the service wrote to its stdout file (for events and alerts).</summary>
    public IReadOnlyList<string> Tail(int lines = 20) => TailOf(Spec.Stdout!, lines);

    internal static IReadOnlyList<string> TailOf(string path, int lines)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var size = Math.Min(f.Length, 8192);
            f.Seek(-size, SeekOrigin.End);
            var buffer = new byte[size];
            f.ReadExactly(buffer);
            var all = Encoding.UTF8.GetString(buffer).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return all.Skip(Math.Max(0, all.Length - lines)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private void RotateLogs()
    {
        try
        {
            var spec = Spec;
            LogRotation.RotateIfNeeded(spec.Stdout!, spec.LogMaxSize.Bytes, spec.LogMaxFiles);
            if (spec.Stderr != spec.Stdout) LogRotation.RotateIfNeeded(spec.Stderr!, spec.LogMaxSize.Bytes, spec.LogMaxFiles);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { LogRotateFailed(_logger, _rule, ex.Message); }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Stops watching (and the service, when asked); a running service is otherwise left running for the next Sentinel to adopt.</summary>
    public async ValueTask DisposeAsync(bool stopService)
    {
        if (stopService) await StopAsync();
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _rotation.DisposeAsync();
        Watch? watch;
        lock (_lock) watch = _watch;
        watch?.Wake?.Set();
    }

    public ValueTask DisposeAsync() => DisposeAsync(stopService: false);

    private sealed class Watch(SupervisedProcess process, Process? own, NativeProcess.WakeHandle? wake)
    {
        public SupervisedProcess Process { get; } = process;
        public Process? Own { get; } = own;
        public NativeProcess.WakeHandle? Wake { get; } = wake;
        public TaskCompletionSource<SupervisorExit> Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Expected;
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Rule {Rule}: started pid {Pid}: {Command}")]
    private static partial void LogStarted(ILogger logger, string rule, int pid, string command);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Rule {Rule}: adopted pid {Pid}, still running from an earlier Sentinel")]
    private static partial void LogAdopted(ILogger logger, string rule, int pid);

    [LoggerMessage(EventId = 502, Level = LogLevel.Warning, Message = "Rule {Rule}: pid {Pid} {How}")]
    private static partial void LogExited(ILogger logger, string rule, int pid, string how);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning, Message = "Rule {Rule}: pid {Pid} did not stop within {Timeout}: sent KILL")]
    private static partial void LogKilled(ILogger logger, string rule, int pid, string timeout);

    [LoggerMessage(EventId = 504, Level = LogLevel.Error, Message = "Rule {Rule}: watching adopted pid {Pid} failed")]
    private static partial void LogWatchFailed(ILogger logger, string rule, int pid, Exception ex);

    [LoggerMessage(EventId = 505, Level = LogLevel.Warning, Message = "Rule {Rule}: rotating the service's log failed: {Reason}")]
    private static partial void LogRotateFailed(ILogger logger, string rule, string reason);
}

/// <summary>Size-based copy-and-truncate rotation: the service keeps its file open in append mode and goes on writing.</summary>
internal static class LogRotation
{
    public static bool RotateIfNeeded(string path, long maxBytes, int keep)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length < maxBytes) return false;
        if (keep > 0)
        {
            File.Delete($"{path}.{keep}");
            for (var i = keep - 1; i >= 1; i--)
                if (File.Exists($"{path}.{i}")) File.Move($"{path}.{i}", $"{path}.{i + 1}");
            File.Copy(path, $"{path}.1");
        }
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        f.SetLength(0);
        return true;
    }
}
