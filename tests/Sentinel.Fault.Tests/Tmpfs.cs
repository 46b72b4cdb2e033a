using System.Diagnostics;

namespace Sentinel.Fault.Tests;

/// <summary>A small tmpfs the test mounts on a temporary folder: a disk that really fills up (ENOSPC), unmounted after.</summary>
public sealed class Tmpfs : IDisposable
{
    public string Path { get; }

    private Tmpfs(string path) => Path = path;

    public static Tmpfs Mount(string size)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sentinel-tmpfs-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(path);
        var (exit, error) = Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0755", "tmpfs", path);
        if (exit != 0)
        {
            Directory.Delete(path);
            throw new InvalidOperationException($"mount -t tmpfs failed ({exit}): {error}");
        }
        return new Tmpfs(path);
    }

    /// <summary>Why a tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN, no mount), or null when it can.</summary>
    public static string? WhyNot { get; } = Probe();

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "mounting a tmpfs needs Linux";
        if (Environment.UserName != "root") return $"mounting a tmpfs needs root (running as {Environment.UserName}); CI runs as root";
        try
        {
            using var t = Mount("64k");
            return null;
        }
        catch (Exception e) { return "this machine refuses to mount a tmpfs: " + e.Message; }
    }

    /// <summary>Fills the disk: writes until the file system says it is full. Returns the filler's path.</summary>
    public string Fill()
    {
        var filler = System.IO.Path.Combine(Path, "filler");
        var block = new byte[64 * 1024];
        using var stream = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        try
        {
            while (true) { stream.Write(block); stream.Flush(); }
        }
        catch (IOException) { }
        // The last pages: what remains in smaller pieces.
        block = new byte[512];
        try
        {
            while (true) { stream.Write(block); stream.Flush(); }
        }
        catch (IOException) { }
        return filler;
    }

    private static (int Exit, string Error) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, error.Trim());
    }

    public void Dispose()
    {
        Run("umount", "-l", Path);
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A fact that needs a tmpfs of its own: skipped, with the reason, where none can be mounted.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (Tmpfs.WhyNot is { } why) Skip = why;
    }
}
