using System.Runtime.InteropServices;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.System;

/// <summary>
/// Stops hung processes: sends the signal (TERM by default), waits up to <c>grace</c> for them to exit, then
/// sends KILL. For services that another supervisor (systemd, launchd) starts again. Fails when no process
/// matched or one survived KILL.
/// </summary>
internal sealed partial class SignalAction(SignalActionOptions options) : IAction
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan AfterKill = TimeSpan.FromSeconds(5);
    private readonly ProcessFinder _finder = new(options);

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var targets = _finder.Find(cancellationToken, out var problem);
        if (targets is null) throw new InvalidOperationException(problem);
        if (targets.Count == 0) throw new InvalidOperationException($"no running process matched {_finder.Describe()}: nothing to stop");

        var signal = Number(options.Signal);
        foreach (var p in targets)
        {
            Send(p.Pid, signal);
            context.Output.WriteLine($"sent {options.Signal.ToString().ToUpperInvariant()} to pid {p.Pid} ({ProcessFinder.Shorten(p.CommandLine, 80)})");
        }
        var alive = await WaitGone(targets, options.Grace, context.TimeProvider, cancellationToken);
        if (alive.Count == 0) return;
        if (signal == 9) throw new InvalidOperationException($"pid {string.Join(", ", alive.Select(p => p.Pid))} did not exit within {PluginText.Duration(options.Grace)} of KILL");
        foreach (var p in alive)
        {
            Send(p.Pid, 9);
            context.Output.WriteLine($"pid {p.Pid} still running after {PluginText.Duration(options.Grace)}: sent KILL");
        }
        alive = await WaitGone(alive, AfterKill, context.TimeProvider, cancellationToken);
        if (alive.Count > 0)
            throw new InvalidOperationException($"pid {string.Join(", ", alive.Select(p => p.Pid))} survived KILL (stuck in the kernel, state D?)");
    }

    private static async Task<List<ProcInfo>> WaitGone(List<ProcInfo> targets, TimeSpan within, TimeProvider time, CancellationToken cancellationToken)
    {
        var start = time.GetTimestamp();
        while (true)
        {
            // The same PID started at the same time is the same process; a zombie has exited.
            var alive = targets.Where(t => ProcFs.Read(t.Pid) is { IsZombie: false } now && now.StartTime == t.StartTime).ToList();
            if (alive.Count == 0 || time.GetElapsedTime(start) >= within) return alive;
            await Task.Delay(PollEvery, time, cancellationToken);
        }
    }

    private static void Send(int pid, int signal)
    {
        if (Kill(pid, signal) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != 3 /* ESRCH: already gone */)
            throw new InvalidOperationException($"cannot signal pid {pid}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    private static int Number(SignalName s) => s switch
    {
        SignalName.Hup => 1, SignalName.Int => 2, SignalName.Quit => 3, SignalName.Kill => 9,
        SignalName.Usr1 => 10, SignalName.Usr2 => 12, _ => 15,
    };

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
