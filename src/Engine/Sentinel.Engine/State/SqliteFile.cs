using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.State;

/// <summary>
/// Opens one of Sentinel's SQLite files (WAL, one connection). A file that is not a readable SQLite database is moved
/// aside (<c>&lt;file&gt;.corrupt-&lt;time&gt;</c>) with a warning and a fresh one is started: never a crash.
/// </summary>
public static partial class SqliteFile
{
    public static SqliteConnection Open(string path, Action<SqliteConnection> prepare, ILogger logger, TimeProvider? time, out string? movedAside)
    {
        time ??= TimeProvider.System;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        movedAside = null;
        try
        {
            return OpenAndPrepare(path, prepare);
        }
        catch (Exception ex) when (ex is SqliteException or InvalidDataException)
        {
            SqliteConnection.ClearAllPools();
            movedAside = $"{path}.corrupt-{time.GetUtcNow():yyyyMMdd-HHmmss}";
            foreach (var suffix in new[] { "", "-wal", "-shm" })
                if (File.Exists(path + suffix)) File.Move(path + suffix, movedAside + suffix, overwrite: true);
            LogCorrupt(logger, path, ex.Message, movedAside);
        }
        return OpenAndPrepare(path, prepare);
    }

    private static SqliteConnection OpenAndPrepare(string path, Action<SqliteConnection> prepare)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            connection.Open();
            using (var check = connection.CreateCommand())
            {
                check.CommandText = "PRAGMA quick_check;";
                var result = check.ExecuteScalar() as string;
                if (result != "ok") throw new InvalidDataException($"integrity check failed: {result}");
            }
            using (var pragmas = connection.CreateCommand())
            {
                pragmas.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
                pragmas.ExecuteNonQuery();
            }
            prepare(connection);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning,
        Message = "The state file {Path} is unreadable ({Reason}); it was moved aside to {MovedTo} and Sentinel starts with a fresh one")]
    private static partial void LogCorrupt(ILogger logger, string path, string reason, string movedTo);
}
