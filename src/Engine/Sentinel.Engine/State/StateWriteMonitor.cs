using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.State;

/// <summary>
/// Whether Sentinel can write what it must keep (rule state, the outbox, status.json, history). Each writer says
/// when a write failed and when one worked again. The first failure is logged once (one line, no stack trace) and
/// raised as <see cref="Failed"/>; the engine's health turns 503 and an alert goes out on the engine channels.
/// What could not be written stays in memory with its writer and is written when a write works again; then
/// <see cref="Recovered"/> is raised. A failing disk never loses what happened meanwhile, and is never silent.
/// </summary>
internal sealed partial class StateWriteMonitor(TimeProvider time, ILogger logger)
{
    private readonly ConcurrentDictionary<string, (DateTimeOffset Since, string Reason)> _failing = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private DateTimeOffset? _since;

    /// <summary>The first writer failed (nothing was failing): when and why.</summary>
    public event Action<DateTimeOffset, string>? Failed;

    /// <summary>Every writer writes again: since when it had failed, and why.</summary>
    public event Action<DateTimeOffset, string>? Recovered;

    /// <summary>Null while every write works; else since when and why the first failing writer fails.</summary>
    public (DateTimeOffset Since, string Reason)? Problem
    {
        get
        {
            var all = _failing.ToArray();
            if (all.Length == 0) return null;
            var first = all.MinBy(f => f.Value.Since);
            return (first.Value.Since, $"{first.Key} not writable: {first.Value.Reason}");
        }
    }

    public void Failure(string writer, Exception error)
    {
        var reason = Describe(error);
        bool first;
        DateTimeOffset since;
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (_failing.TryGetValue(writer, out var known) && known.Reason == reason) return;
            _failing[writer] = (known.Since == default ? now : known.Since, reason);
            first = _since is null;
            _since ??= now;
            since = _since.Value;
        }
        LogFailing(logger, writer, reason);
        if (first) Failed?.Invoke(since, $"{writer} not writable: {reason}");
    }

    public void Success(string writer)
    {
        if (_failing.IsEmpty) return;
        DateTimeOffset since;
        string reason;
        lock (_lock)
        {
            if (!_failing.TryRemove(writer, out var was)) return;
            LogWritable(logger, writer);
            if (!_failing.IsEmpty || _since is null) return;
            since = _since.Value;
            reason = $"{writer} not writable: {was.Reason}";
            _since = null;
        }
        Recovered?.Invoke(since, reason);
    }

    /// <summary>"disk full" for ENOSPC and SQLITE_FULL, the OS's words otherwise: what an operator acts on.</summary>
    public static string Describe(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is SqliteException { SqliteErrorCode: 13 }) return "disk full";
            if (e is IOException io && (io.HResult & 0xFFFF) == 28) return "disk full"; // ENOSPC
            if (e is SqliteException { SqliteErrorCode: 8 } or UnauthorizedAccessException) return "permission denied or read-only: " + e.Message;
        }
        return error.Message;
    }

    [LoggerMessage(EventId = 402, Level = LogLevel.Error, Message = "Cannot write the {Writer}: {Reason}. Kept in memory and written when it works again; /health is 503 meanwhile")]
    private static partial void LogFailing(ILogger logger, string writer, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "The {Writer} is written again; nothing kept in memory was lost")]
    private static partial void LogWritable(ILogger logger, string writer);
}
