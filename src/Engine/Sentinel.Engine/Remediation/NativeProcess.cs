using System.Globalization;
using System.Runtime.InteropServices;

namespace Sentinel.Engine.Remediation;

/// <summary>The few Linux process calls supervision needs: signals, start times, and exit notification by pidfd.</summary>
internal static partial class NativeProcess
{
    public const int SigKill = 9;

    public static int Number(StopSignal s) => s switch
    {
        StopSignal.Hup => 1, StopSignal.Int => 2, StopSignal.Quit => 3,
        StopSignal.Kill => 9, StopSignal.Usr1 => 10, StopSignal.Usr2 => 12, _ => 15,
    };

    /// <summary>Sends a signal; false when the process (or group) no longer exists.</summary>
    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    /// <summary>The process's start time in clock ticks since boot (field 22 of /proc/pid/stat), and whether it is a zombie; null when gone.</summary>
    public static (long StartTicks, bool Zombie)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            if (close < 0) return null;
            var f = stat[(close + 2)..].Split(' ');
            return (long.Parse(f[19], CultureInfo.InvariantCulture), f[0] is "Z" or "X");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static readonly Lazy<DateTimeOffset> BootTime = new(() =>
    {
        foreach (var line in File.ReadLines("/proc/stat"))
            if (line.StartsWith("btime ", StringComparison.Ordinal))
                return DateTimeOffset.FromUnixTimeSeconds(long.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture));
        return DateTimeOffset.UnixEpoch;
    });

    private static readonly Lazy<long> ClockTicks = new(() => Math.Max(1, SysConf(2 /* _SC_CLK_TCK */)));

    /// <summary>When a process started, from its start ticks (whole-second boot time: about a second of slack).</summary>
    public static DateTimeOffset StartTime(long startTicks) => BootTime.Value.AddSeconds((double)startTicks / ClockTicks.Value);

    /// <summary>The process's command line, arguments separated by spaces; empty when gone.</summary>
    public static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    /// <summary>True while the process with this PID and start time runs (not a zombie, not a reused PID).</summary>
    public static bool IsAlive(int pid, long startTicks) => Stat(pid) is { Zombie: false } s && s.StartTicks == startTicks;

    /// <summary>
    /// Blocks until the process exits or <paramref name="cancel"/> is written to; uses a pidfd (Linux 5.3+), so
    /// the exit of a process that is not Sentinel's child is seen at once. Returns false if cancelled.
    /// </summary>
    public static bool WaitForExit(int pid, long startTicks, WakeHandle cancel)
    {
        var pidfd = (int)Syscall(PidfdOpenSyscall, pid, 0);
        if (pidfd < 0)
        {
            // No pidfd (old kernel, or the process is already gone): check /proc, waking on cancel.
            while (IsAlive(pid, startTicks))
                if (cancel.Wait(TimeSpan.FromSeconds(1))) return false;
            return true;
        }
        try
        {
            if (!IsAlive(pid, startTicks)) return true; // the PID was reused before the pidfd was opened
            Span<PollFd> fds = [new PollFd { Fd = pidfd, Events = PollIn }, new PollFd { Fd = cancel.Fd, Events = PollIn }];
            while (true)
            {
                var n = Poll(ref MemoryMarshal.GetReference(fds), 2, -1);
                if (n < 0 && Marshal.GetLastPInvokeError() == 4 /* EINTR */) continue;
                if (n < 0) throw new IOException($"poll failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                if (fds[1].REvents != 0) return false;
                if (fds[0].REvents != 0) return true;
            }
        }
        finally { Close(pidfd); }
    }

    /// <summary>Finds a program the way execvp would: a path as given, else the first executable on PATH.</summary>
    public static string? Which(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? Path.GetFullPath(program) : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate) && !OperatingSystem.IsWindows() && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return candidate;
        }
        return null;
    }

    /// <summary>An eventfd to wake a thread blocked in <see cref="WaitForExit"/>.</summary>
    public sealed class WakeHandle : IDisposable
    {
        private int _fd = EventFd(0, 0x80000 /* EFD_CLOEXEC */);

        public int Fd => _fd;

        public void Set()
        {
            if (_fd < 0) return;
            long one = 1;
            _ = Write(_fd, ref one, 8);
        }

        public bool Wait(TimeSpan timeout)
        {
            Span<PollFd> fds = [new PollFd { Fd = _fd, Events = PollIn }];
            return Poll(ref MemoryMarshal.GetReference(fds), 1, (int)timeout.TotalMilliseconds) > 0;
        }

        public void Dispose()
        {
            var fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0) Close(fd);
        }
    }

    private const long PidfdOpenSyscall = 434;
    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int pid, uint flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollFd fds, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, ref long value, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
