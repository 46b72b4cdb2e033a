using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Runtime.InteropServices;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Files;

public sealed class DiskProbeOptions
{
    [Required, FilePath, Description("Any path on the filesystem to watch.")]
    public string? Path { get; set; }

    [Range(0.0, 100.0), Description("Fail when less than this percentage of space is free for unprivileged users.")]
    public double? MinFreePercent { get; set; }

    [Description("Fail when less than this much space is free, e.g. 2GB.")]
    public ByteSize? MinFree { get; set; }

    [Range(0.0, 100.0), Description("Fail when less than this percentage of inodes is free.")]
    public double? MinInodesFreePercent { get; set; }

    [Description("The window over which growth (bytes per hour) is measured.")]
    public TimeSpan GrowthWindow { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// statvfs of the filesystem holding a path: data <c>free</c> (available to unprivileged users, as df shows),
/// <c>total</c>, <c>free-percent</c>, <c>inodes-free-percent</c>, <c>growth</c> (used bytes per hour over the window;
/// durable across restarts) and <c>full-in</c> when it is growing.
/// </summary>
internal sealed partial class DiskProbe(DiskProbeOptions options, TimeProvider time) : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (!Stat(options.Path!, out var s, out var error)) return ValueTask.FromResult(ProbeResult.Unhealthy($"cannot read the filesystem of {options.Path}: {error}"));
        var unit = s.FragmentSize > 0 ? s.FragmentSize : s.BlockSize;
        var total = (long)(s.Blocks * unit);
        var free = (long)(s.BlocksAvailable * unit);
        var used = total - (long)(s.BlocksFree * unit);
        var usable = used + free; // what df calls the size for unprivileged users
        var freePercent = usable > 0 ? Math.Round(100.0 * free / usable, 2) : 100;
        var inodesFree = s.Files > 0 ? Math.Round(100.0 * s.FilesFree / s.Files, 2) : 100;
        var data = new Dictionary<string, object>
        {
            ["free"] = new ByteSize(free), ["total"] = new ByteSize(total), ["used"] = new ByteSize(used),
            ["free-percent"] = freePercent, ["inodes-free-percent"] = inodesFree,
        };
        var growth = Growth(context.State, used);
        if (growth is { } g) data["growth"] = new ByteSize((long)g);
        // full-in is always there (a condition on it must not fail for want of a value): ten years when not filling.
        var filling = growth is > 0;
        data["full-in"] = filling ? TimeSpan.FromHours(Math.Min(free / growth!.Value, 87_600)) : TimeSpan.FromDays(3650);
        var summary = $"{new ByteSize(free)} free of {new ByteSize(usable)} ({freePercent.ToString(CultureInfo.InvariantCulture)}%), inodes {inodesFree.ToString(CultureInfo.InvariantCulture)}% free"
            + (filling ? $", full in {PluginText.Duration((TimeSpan)data["full-in"])} at this rate" : "");
        string? failure =
            options.MinFreePercent is { } p && freePercent < p ? $"only {freePercent.ToString(CultureInfo.InvariantCulture)}% free (min {p.ToString(CultureInfo.InvariantCulture)}%)"
            : options.MinFree is { } m && free < m.Bytes ? $"only {new ByteSize(free)} free (min {m})"
            : options.MinInodesFreePercent is { } ip && inodesFree < ip ? $"only {inodesFree.ToString(CultureInfo.InvariantCulture)}% of inodes free (min {ip.ToString(CultureInfo.InvariantCulture)}%)"
            : null;
        return ValueTask.FromResult(failure is null ? ProbeResult.Healthy(summary, data) : ProbeResult.Unhealthy($"{failure}: {summary}", null, data));
    }

    // Samples of used bytes, kept in the rule's durable state, give the growth over the window.
    private double? Growth(IProbeState state, long used)
    {
        var now = time.GetUtcNow();
        var samples = (state.Get("samples") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(x => x.Split('='))
            .Where(x => x.Length == 2 && long.TryParse(x[0], out _) && long.TryParse(x[1], out _))
            .Select(x => (At: DateTimeOffset.FromUnixTimeSeconds(long.Parse(x[0], CultureInfo.InvariantCulture)), Used: long.Parse(x[1], CultureInfo.InvariantCulture)))
            .Where(x => now - x.At <= options.GrowthWindow).ToList();
        if (samples.Count == 0 || now - samples[^1].At >= TimeSpan.FromSeconds(options.GrowthWindow.TotalSeconds / 60)) samples.Add((now, used));
        state.Set("samples", string.Join(';', samples.Select(x => $"{x.At.ToUnixTimeSeconds()}={x.Used}")));
        var first = samples[0];
        var span = now - first.At;
        return span >= TimeSpan.FromSeconds(Math.Max(1, options.GrowthWindow.TotalSeconds / 10)) ? (used - first.Used) / span.TotalHours : null;
    }

    internal static bool Stat(string path, out StatVfs stat, out string error)
    {
        error = "";
        if (statvfs(path, out stat) == 0) return true;
        error = Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
        return false;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct StatVfs
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FilesAvailable;
        public ulong FsId;
        public ulong Flags;
        public ulong NameMax;
        private unsafe fixed int _spare[6];
    }

    [LibraryImport("libc", EntryPoint = "statvfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statvfs(string path, out StatVfs buf);
}
