using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.State;

/// <summary>
/// Opens one of Sentinel's SQLite files (WAL, one connection). Only a file that SQLite itself says is damaged (a
/// failed <c>PRAGMA quick_check</c>, <c>SQLITE_CORRUPT</c>, <c>SQLITE_NOTADB</c>) is moved aside
/// (<c>&lt;file&gt;.corrupt-&lt;time&gt;</c>) with a warning, and a fresh one started. Anything else — a full disk,
/// an I/O error, a file held locked by another program, one that cannot be opened — says nothing about the file:
/// it is retried, then reported (<see cref="StateFileUnavailableException"/>), and the file is left as it is.
/// </summary>
internal static partial class SqliteFile
{
    private const int Corrupt = 11, NotADatabase = 26;
    private static readonly TimeSpan[] Retries = [TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1)];

    public static SqliteConnection Open(string path, Action<SqliteConnection> prepare, ILogger logger, TimeProvider? time, out string? movedAside)
    {
        time ??= TimeProvider.System;
        PrivateFiles.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        movedAside = null;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return OpenAndPrepare(path, prepare);
            }
            catch (Exception ex) when (IsDamage(ex))
            {
                SqliteConnection.ClearAllPools();
                movedAside = $"{path}.corrupt-{time.GetUtcNow():yyyyMMdd-HHmmss}";
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                    if (File.Exists(path + suffix)) File.Move(path + suffix, movedAside + suffix, overwrite: true);
                LogCorrupt(logger, path, ex.Message, movedAside);
                return OpenAndPrepare(path, prepare);
            }
            catch (SqliteException ex)
            {
                SqliteConnection.ClearAllPools();
                if (attempt == Retries.Length) throw new StateFileUnavailableException(path, ex);
                LogRetrying(logger, path, ex.Message, Retries[attempt].TotalSeconds);
                Thread.Sleep(Retries[attempt]); // start-up only: nothing else waits on it yet
            }
        }
    }

    private static bool IsDamage(Exception ex)
        => ex is InvalidDataException || (ex is SqliteException s && (s.SqliteErrorCode & 0xFF) is Corrupt or NotADatabase);

    private static SqliteConnection OpenAndPrepare(string path, Action<SqliteConnection> prepare)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            connection.Open();
            using (var check = connection.CreateCommand())
            {
                check.CommandText = "PRAGMA quick_check;";
                check.CommandTimeout = 1; // a file locked by another program is reported and retried, not waited on for 30s
                var result = check.ExecuteScalar() as string;
                if (result != "ok") throw new InvalidDataException($"integrity check failed: {result}");
            }
            using (var pragmas = connection.CreateCommand())
            {
                pragmas.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
                pragmas.ExecuteNonQuery();
            }
            prepare(connection);
            // SQLite gives its -wal and -shm files the database file's mode.
            foreach (var suffix in new[] { "", "-wal", "-shm" }) PrivateFiles.Restrict(path + suffix);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "The state file {Path} cannot be opened ({Reason}); it is left as it is and tried again in {Seconds}s")]
    private static partial void LogRetrying(ILogger logger, string path, string reason, double seconds);

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning,
        Message = "The state file {Path} is unreadable ({Reason}); it was moved aside to {MovedTo} and Sentinel starts with a fresh one")]
    private static partial void LogCorrupt(ILogger logger, string path, string reason, string movedTo);
}

/// <summary>A state file that cannot be opened for a reason that is not damage to it (full disk, I/O error, locked, no access).</summary>
internal sealed class StateFileUnavailableException(string path, SqliteException inner)
    : IOException($"the state file {path} cannot be opened: {inner.Message.TrimEnd('.')}. It was left as it is (nothing was moved aside): "
        + "free disk space, or stop the program that holds it, then start Sentinel again", inner)
{
    public string Path { get; } = path;
}
