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

    public static bool Available => Directory.Exists("/proc/self");

    public static IEnumerable<int> Pids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) yield return pid;
    }

    public static ProcInfo? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // comm is in parentheses and may itself contain spaces and parentheses: split after the last ')'.
            var open = stat.IndexOf('(');
            var close = stat.LastIndexOf(')');
            if (open < 0 || close < open) return null;
            var comm = stat[(open + 1)..close];
            var f = stat[(close + 2)..].Split(' ');
            // f[0] is field 3 (state); field n is f[n - 3].
            var state = f[0].Length > 0 ? f[0][0] : '?';
            var session = int.Parse(f[3], CultureInfo.InvariantCulture);
            var utime = long.Parse(f[11], CultureInfo.InvariantCulture);
            var stime = long.Parse(f[12], CultureInfo.InvariantCulture);
            var threads = int.Parse(f[17], CultureInfo.InvariantCulture);
            var startTicks = long.Parse(f[19], CultureInfo.InvariantCulture);
            var rssPages = long.Parse(f[21], CultureInfo.InvariantCulture);
            var cmdline = ReadCommandLine(pid);
            string? exe = null;
            try { exe = Path.GetFileName(new FileInfo($"/proc/{pid}/exe").LinkTarget); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            return new ProcInfo(pid, comm, state, cmdline, exe,
                BootTime.Value.AddSeconds((double)startTicks / ClockTicks.Value),
                TimeSpan.FromSeconds((double)(utime + stime) / ClockTicks.Value),
                rssPages * Environment.SystemPageSize, threads, session);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null; // gone, or not ours to read
        }
    }

    private static string ReadCommandLine(int pid)
    {
        try
        {
            var bytes = File.ReadAllBytes($"/proc/{pid}/cmdline");
            var end = bytes.Length;
            while (end > 0 && bytes[end - 1] == 0) end--;
            return Encoding.UTF8.GetString(bytes, 0, end).Replace('\0', ' ');
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
