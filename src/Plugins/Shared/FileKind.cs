using System.Runtime.InteropServices;

namespace Sentinel.Plugins.Shared;

/// <summary>
/// Tells a regular file from one that cannot be read at once: opening a FIFO nobody writes waits for a writer (in the
/// kernel, where no cancellation reaches), and a socket or a device is no file to judge. Probes ask before they open.
/// </summary>
internal static class FileKind
{
    /// <summary>Why <paramref name="path"/> is not a regular file (a FIFO, a socket, a device), or null when it is one or
    /// cannot be looked at (a missing file then fails at its open with its own message).</summary>
    public static string? NotRegular(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var buffer = new byte[256]; // struct statx; its layout is the same on every architecture
        try
        {
            if (Statx(-100 /* AT_FDCWD */, path, 0, 0x1 /* STATX_TYPE */, buffer) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        return (BitConverter.ToUInt16(buffer, 28) & 0xF000) switch
        {
            0x1000 => "is a FIFO (named pipe), not a file: reading it would wait until something writes to it",
            0xC000 => "is a socket, not a file",
            0x2000 or 0x6000 => "is a device, not a file",
            _ => null,
        };
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
