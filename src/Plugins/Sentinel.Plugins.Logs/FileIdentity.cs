using System.Runtime.InteropServices;

namespace Sentinel.Plugins.Logs;

/// <summary>A file's inode, to tell a rotated (renamed and re-created) log from the same log grown.</summary>
internal static unsafe partial class FileIdentity
{
    private const int AtFdCwd = -100;
    private const uint StatxIno = 0x100;

    /// <summary>The inode of <paramref name="path"/>, or null when it does not exist (or the platform has no statx).</summary>
    public static ulong? Inode(string path)
    {
        // struct statx has one layout on every architecture (that is its point); stx_ino is the u64 at offset 32.
        var buffer = stackalloc byte[256];
        try
        {
            return StatX(AtFdCwd, path, 0, StatxIno, buffer) == 0 ? *(ulong*)(buffer + 32) : null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return File.Exists(path) ? 0UL : null;
        }
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatX(int dirfd, string path, int flags, uint mask, byte* buffer);
}
