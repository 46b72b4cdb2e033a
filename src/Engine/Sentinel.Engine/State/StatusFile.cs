namespace Sentinel.Engine.State;

/// <summary>Writes a file atomically: a temporary file in the same folder, flushed, then renamed over the target.</summary>
internal static class StatusFile
{
    /// <summary>Streams the content into the temporary file, so a large document is never held in memory whole.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="write">Streams the content.</param>
    /// <param name="shared">Readable by everyone (0644: a pidfile), instead of only by Sentinel's user (0600).</param>
    public static void WriteAtomic(string path, Action<Stream> write, bool shared = false)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        PrivateFiles.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 64 * 1024 };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = shared ? PrivateFiles.FileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead : PrivateFiles.FileMode;
            using (var stream = new FileStream(temp, options))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }
}
