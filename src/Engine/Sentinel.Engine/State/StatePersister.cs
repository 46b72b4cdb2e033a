using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.State;

/// <summary>
/// Coalesces rule state changes and writes them to the store and to status.json at most once per interval
/// (at once after a transition), so thousands of checks a second cost one transaction, not thousands. Above
/// <see cref="RulesPerStatusFlush"/> rules, what changed by check times alone (a rule's check count and last check,
/// marked <c>routine</c>) is written only every few flushes (one flush per that many rules: every 20 s at 10,000 rules
/// and the default 5 s), to the rows and to status.json; a transition, a failure counted towards a threshold, a
/// probe's or a remediation's state, a pause, a config change or a rule removed is written at the next flush as
/// always. At 10,000 rules the rows of check times alone were 10,000 upserts every 5 s (~1.5% of a core), and
/// status.json 81 ms of CPU a build. A SIGKILL loses at most that many seconds of check counts, never a state.
/// </summary>
internal sealed partial class StatePersister : IAsyncDisposable
{
    private readonly IStateStore _store;
    private readonly string? _statusPath;
    private readonly Action<Stream> _writeStatus;
    private readonly TimeSpan _interval;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private ConcurrentDictionary<string, RuleState> _dirty = new(StringComparer.Ordinal);
    private ConcurrentDictionary<string, byte> _material = new(StringComparer.Ordinal); // dirty rules with more than check times to write
    private ConcurrentDictionary<string, byte> _removed = new(StringComparer.Ordinal);
    private int _changed = 1;      // rows or status.json to write
    private int _statusNow = 1;    // status.json shows something that changed beyond check times
    private int _routineFlushes;   // flushes since status.json was rewritten, check times alone having changed
    private Task? _loop;

    /// <summary>Rules per flush between two rewrites of status.json for check times alone.</summary>
    public const int RulesPerStatusFlush = 2500;

    /// <summary>How many rules there are (status.json's size); none given: rewritten at every flush.</summary>
    public Func<int>? RuleCount { get; init; }

    private readonly StateWriteMonitor? _writes;

    public StatePersister(IStateStore store, string? statusPath, Action<Stream> writeStatus, TimeSpan interval, ILogger logger, StateWriteMonitor? writes = null)
    {
        _writes = writes;
        _store = store;
        _statusPath = statusPath;
        _writeStatus = writeStatus;
        _interval = interval;
        _logger = logger;
    }

    /// <summary>Starts the flush loop on a thread of its own: its disk work must not take thread-pool threads from checks.</summary>
    public void Start() => _loop ??= DedicatedThread.Start("sentinel-state", Loop);

    /// <summary>
    /// Marks the rule's state to be written; <paramref name="routine"/>: it differs from the last by its check count and
    /// last check alone, and may wait for the next routine flush (with many rules).
    /// </summary>
    public void MarkDirty(RuleState state, bool routine = false)
    {
        _removed.TryRemove(state.Rule, out _);
        _dirty[state.Rule] = state;
        if (!routine) _material[state.Rule] = 0;
        Volatile.Write(ref _changed, 1);
    }

    public void MarkRemoved(string rule)
    {
        _dirty.TryRemove(rule, out _);
        _removed[rule] = 0;
        Volatile.Write(ref _statusNow, 1);
        Volatile.Write(ref _changed, 1);
    }

    /// <summary>Something shown in status.json changed that is not a rule state (config errors, plugins).</summary>
    public void MarkStatusChanged()
    {
        Volatile.Write(ref _statusNow, 1);
        Volatile.Write(ref _changed, 1);
    }

    /// <summary>Asks for a flush now rather than at the next interval (a transition: status.json is rewritten too).</summary>
    public void FlushSoon()
    {
        MarkStatusChanged();
        if (_wake.CurrentCount == 0)
        {
            try { _wake.Release(); } catch (SemaphoreFullException) { }
        }
    }

    private void Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                _wake.Wait(_interval, _stop.Token);
                FlushAsync(_stop.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
            catch (Exception) when (_writes is not null) { } // reported by FlushAsync to the monitor; kept and retried at the next interval
            catch (Exception ex) { LogFlushFailed(_logger, ex); }
        }
    }

    /// <summary>Writes what changed; <paramref name="all"/>: check times alone too, whatever the flush (a stop).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default, bool all = false)
    {
        await _flushGate.WaitAsync(cancellationToken);
        try
        {
            if (Interlocked.Exchange(ref _changed, 0) == 0) return;
            var every = Math.Max(1, (RuleCount?.Invoke() ?? 0) / RulesPerStatusFlush);
            var statusNow = Interlocked.Exchange(ref _statusNow, 0) == 1;
            // A routine flush writes everything: every few flushes, at a stop, and whenever status.json is rewritten anyway.
            var routine = all || every == 1 || statusNow || ++_routineFlushes >= every;
            if (routine) _routineFlushes = 0;
            var material = Interlocked.Exchange(ref _material, new(StringComparer.Ordinal));
            var removed = Interlocked.Exchange(ref _removed, new(StringComparer.Ordinal));
            Dictionary<string, RuleState> dirty;
            if (routine) dirty = new(Interlocked.Exchange(ref _dirty, new(StringComparer.Ordinal)), StringComparer.Ordinal);
            else
            {
                // Check times alone wait in _dirty for the routine flush.
                dirty = new(StringComparer.Ordinal);
                foreach (var rule in material.Keys)
                    if (_dirty.TryRemove(rule, out var state)) dirty[rule] = state;
                if (!_dirty.IsEmpty) Volatile.Write(ref _changed, 1);
            }
            try
            {
                await _store.SaveAsync(dirty.Values.ToList(), removed.Keys.ToList(), cancellationToken);
                _writes?.Success(StateWriter);
            }
            catch (Exception ex)
            {
                // Kept, newer changes first: written at the next flush that works.
                foreach (var (k, v) in dirty) { _dirty.TryAdd(k, v); _material.TryAdd(k, 0); }
                foreach (var k in removed.Keys) _removed.TryAdd(k, 0);
                if (statusNow) Volatile.Write(ref _statusNow, 1);
                Volatile.Write(ref _changed, 1);
                if (ex is not OperationCanceledException) _writes?.Failure(StateWriter, ex);
                throw;
            }
            if (_statusPath is not null)
            {
                if (!statusNow && !routine)
                {
                    Volatile.Write(ref _changed, 1); // check times to show: looked at again at the next flush
                    return;
                }
                try
                {
                    StatusFile.WriteAtomic(_statusPath, _writeStatus);
                    _writes?.Success(StatusWriter);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Volatile.Write(ref _statusNow, 1);
                    Volatile.Write(ref _changed, 1);
                    _writes?.Failure(StatusWriter, ex);
                    throw;
                }
            }
        }
        finally { _flushGate.Release(); }
    }

    private const string StateWriter = "state";
    private const string StatusWriter = "status.json";

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null) await _loop;
        MarkStatusChanged(); // the last word: status.json as Sentinel stopped
        try { await FlushAsync(CancellationToken.None, all: true); }
        catch (Exception ex) { LogFlushFailed(_logger, ex); }
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 401, Level = LogLevel.Error, Message = "Writing the rule state failed; it will be retried")]
    private static partial void LogFlushFailed(ILogger logger, Exception ex);
}
