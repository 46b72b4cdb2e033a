using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Sentinel.Plugins.System;

/// <summary>One process as /proc describes it.</summary>
internal sealed record ProcInfo(int Pid, string Comm, char State, string CommandLine, string? ExeName,
    DateTimeOffset StartTime, TimeSpan CpuTime, long RssBytes, int Threads, int Session = 0)
{
    public bool IsZombie => State is 'Z' or 'X' or 'x';
}

/// <summary>Reads processes from Linux's /proc. Every read tolerates the process vanishing meanwhile.</summary>
internal static partial class ProcFs
{
    private static readonly Lazy<long> ClockTicks = new(() => RuntimeInformation.IsOSPlatform(OSPlatform.Linux) ? Math.Max(1, SysConf(2)) : 100);
    private static readonly Lazy<DateTimeOffset> BootTime = new(ReadBootTime);

    private static readonly Lazy<bool> HasProc = new(() => Directory.Exists("/proc/self"));

    public static bool Available => HasProc.Value;

    public static IEnumerable<int> Pids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) yield return pid;
    }

    public static ProcInfo? Read(int pid)
    {
        try
        {
            // /proc/PID/stat is one line of under 1 KiB: read into the stack, parsed in place.
            Span<byte> buffer = stackalloc byte[2048];
            int length;
            using (var handle = File.OpenHandle($"/proc/{pid}/stat")) length = RandomAccess.Read(handle, buffer, 0);
            var stat = buffer[..length];
            // comm is in parentheses and may itself contain spaces and parentheses: split after the last ')'.
            var open = stat.IndexOf((byte)'(');
            var close = stat.LastIndexOf((byte)')');
            if (open < 0 || close < open || close + 2 > stat.Length) return null;
            var comm = Encoding.UTF8.GetString(stat[(open + 1)..close]);
            var fields = stat[(close + 2)..];
            // Field 3 (state) is the first after comm; field n is the (n - 3)th.
            var state = fields.Length > 0 ? (char)fields[0] : '?';
            long session = 0, utime = 0, stime = 0, threads = 0, startTicks = 0, rssPages = 0;
            var index = 0;
            foreach (var range in fields.Split((byte)' '))
            {
                var field = fields[range];
                switch (index++)
                {
                    case 3: session = Number(field); break;
                    case 11: utime = Number(field); break;
                    case 12: stime = Number(field); break;
                    case 17: threads = Number(field); break;
                    case 19: startTicks = Number(field); break;
                    case 21: rssPages = Number(field); break;
                }
                if (index > 21) break;
            }
            if (index <= 21) return null;
            var (cmdline, exe) = CommandAndExe(pid);
            return new ProcInfo(pid, comm, state, cmdline, exe,
                BootTime.Value.AddSeconds((double)startTicks / ClockTicks.Value),
                TimeSpan.FromSeconds((double)(utime + stime) / ClockTicks.Value),
                rssPages * Environment.SystemPageSize, (int)threads, (int)session);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return null; // gone, or not ours to read
        }
    }

    private static long Number(ReadOnlySpan<byte> digits)
        => global::System.Buffers.Text.Utf8Parser.TryParse(digits, out long value, out var used) && used == digits.Length ? value : throw new FormatException("not a number in /proc/PID/stat");

    // Read each time, not kept: a process may exec another program under the same pid and start time.
    private static (string CommandLine, string? Exe) CommandAndExe(int pid)
    {
        var cmdline = ReadCommandLine(pid);
        string? exe = null;
        try { exe = Path.GetFileName(new FileInfo($"/proc/{pid}/exe").LinkTarget); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return (cmdline, exe);
    }

    private static string ReadCommandLine(int pid)
    {
        try
        {
            Span<byte> small = stackalloc byte[4096];
            int length;
            using (var handle = File.OpenHandle($"/proc/{pid}/cmdline")) length = RandomAccess.Read(handle, small, 0);
            // A command line longer than the buffer is read whole.
            ReadOnlySpan<byte> bytes = length < small.Length ? small[..length] : File.ReadAllBytes($"/proc/{pid}/cmdline");
            bytes = bytes.TrimEnd((byte)0);
            return Encoding.UTF8.GetString(bytes).Replace('\0', ' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    private static DateTimeOffset ReadBootTime()
    {
        foreach (var line in File.ReadLines("/proc/stat"))
            if (line.StartsWith("btime ", StringComparison.Ordinal))
                return DateTimeOffset.FromUnixTimeSeconds(long.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture));
        return DateTimeOffset.UnixEpoch;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
