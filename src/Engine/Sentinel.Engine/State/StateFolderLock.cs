namespace Sentinel.Engine.State;

/// <summary>
/// One engine per state folder: an exclusive OS lock on <c>state/sentinel.lock</c> (flock, which .NET takes for
/// <see cref="FileShare.None"/>), held for the engine's life and released by the kernel when the process dies, however
/// it dies. The holder's PID is written beside it (<c>sentinel.pid</c>) so a refused second instance can name it.
/// </summary>
internal sealed class StateFolderLock : IDisposable
{
    private readonly FileStream _lock;
    private readonly string _pidFile;

    private StateFolderLock(FileStream @lock, string pidFile)
    {
        _lock = @lock;
        _pidFile = pidFile;
    }

    /// <summary>Takes the lock, or returns null with who holds it (as a sentence) when another process does.</summary>
    public static StateFolderLock? TryAcquire(string stateDirectory, out string? heldBy)
    {
        PrivateFiles.CreateDirectory(stateDirectory);
        var path = Path.Combine(stateDirectory, "sentinel.lock");
        var pidFile = Path.Combine(stateDirectory, "sentinel.pid");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException)
        {
            var pid = File.Exists(pidFile) ? File.ReadAllText(pidFile).Trim() : "";
            heldBy = pid.Length > 0 && int.TryParse(pid, out _) ? $"another Sentinel (pid {pid})" : "another Sentinel";
            return null;
        }
        File.WriteAllText(pidFile, Environment.ProcessId + "\n");
        heldBy = null;
        return new StateFolderLock(stream, pidFile);
    }

    public void Dispose()
    {
        try { File.Delete(_pidFile); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _lock.Dispose();
    }
}
