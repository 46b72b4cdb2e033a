using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Rules;

/// <summary>
/// One rule's probe call, made once per rule and used again check after check: the probe is started on the thread
/// pool apart from its caller (a plugin that blocks its thread costs only that thread), its token is cancelled at the
/// rule's timeout or at Sentinel's stop, and the caller's wait ends when the probe does, or a grace after its timeout
/// (the probe is then abandoned: stuck). One timer, one cancellation source and this object serve every check, so a
/// check that completes allocates none of it (a source and two timers a check, before; docs/performance.md).
/// </summary>
/// <remarks>
/// A call is started again only once its probe has ended (<see cref="Busy"/>): an abandoned probe keeps it until it
/// returns. The cancellation source is kept while no cancellation happened, and renewed after one (or after
/// <see cref="RenewAfter"/> checks, so that a probe that registers on its token and never unregisters cannot pile
/// registrations up on one source).
/// </remarks>
internal sealed class ProbeCall : IThreadPoolWorkItem, IValueTaskSource, IDisposable
{
    private const int RenewAfter = 100;

    private readonly Func<ProbeContext, CancellationToken, ValueTask<ProbeResult>> _check;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly Action _onProbeEnded;
    private readonly Lock _lock = new();
    private ManualResetValueTaskSourceCore<bool> _wait; // set when the caller stops waiting (the probe ended, or gave up)
    private CancellationTokenSource _source = new();
    private int _uses;
    private CancellationTokenRegistration _stop;
    private ExecutionContext? _flow;

    // Of the check under way (written under _lock, or before the work item is queued).
    private ProbeContext? _context;
    private CancellationToken _token;
    private TimeSpan _timeout;
    private long _started;
    private bool _running;  // the probe has not returned
    private bool _waiting;  // the caller has not been let go
    private bool _cancelled; // the probe's token was cancelled (timeout or stop)
    private bool _timedOut;
    private ConfiguredValueTaskAwaitable<ProbeResult>.ConfiguredValueTaskAwaiter _pending;

    public ProbeCall(Func<ProbeContext, CancellationToken, ValueTask<ProbeResult>> check, TimeProvider time)
    {
        _check = check;
        _time = time;
        _onProbeEnded = OnProbeEnded;
        _timer = time.CreateTimer(static s => ((ProbeCall)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The previous probe has not returned yet (it ignored its timeout and was abandoned).</summary>
    public bool Busy { get { lock (_lock) return _running; } }

    /// <summary>How long past its timeout a probe that ignores cancellation is waited for before it is abandoned.</summary>
    public static TimeSpan AbandonGrace { get; } = TimeSpan.FromSeconds(1);

    /// <summary>The probe returned (or threw) before the wait ended: <see cref="Result"/> or <see cref="Error"/> holds it.</summary>
    public bool Ended { get; private set; }

    /// <summary>The probe's token was cancelled by its timeout (not by Sentinel's stop).</summary>
    public bool TimedOut { get { lock (_lock) return _timedOut; } }

    public ProbeResult Result { get; private set; }
    public Exception? Error { get; private set; }

    /// <summary>
    /// Starts the probe and returns the wait for it: over when the probe returns, at <paramref name="timeout"/> plus
    /// <see cref="AbandonGrace"/>, or at once when <paramref name="stopping"/> is cancelled. False when the previous
    /// probe is still running (nothing was started).
    /// </summary>
    public bool TryStart(ProbeContext context, TimeSpan timeout, CancellationToken stopping, out ValueTask wait)
    {
        lock (_lock)
        {
            if (_running) { wait = default; return false; }
            if (_cancelled || ++_uses > RenewAfter || !_source.TryReset())
            {
                _source.Dispose();
                _source = new CancellationTokenSource();
                _uses = 1;
            }
            _wait.Reset();
            _context = context;
            _token = _source.Token;
            _timeout = timeout;
            _started = _time.GetTimestamp();
            _running = _waiting = true;
            _cancelled = _timedOut = false;
            Ended = false;
            Result = default;
            Error = null;
            _timer.Change(timeout, Timeout.InfiniteTimeSpan);
        }
        // Registered on a long-lived token, a registration reuses the node the previous one freed.
        _stop = stopping.CanBeCanceled ? stopping.UnsafeRegister(static s => ((ProbeCall)s!).OnStopping(), this) : default;
        _flow = ExecutionContext.Capture();
        wait = new ValueTask(this, _wait.Version);
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        return true;
    }

    /// <summary>After the wait: lets go of Sentinel's stop (the probe's token stays cancellable by its timeout).</summary>
    public void Release() => _stop.Dispose();

    void IThreadPoolWorkItem.Execute()
    {
        var flow = _flow;
        _flow = null;
        if (flow is null) Call();
        else ExecutionContext.Run(flow, static s => ((ProbeCall)s!).Call(), this);
    }

    private void Call()
    {
        try
        {
            var task = _check(_context!, _token);
            if (task.IsCompleted) { End(task.Result, null); return; }
            _pending = task.ConfigureAwait(false).GetAwaiter();
            _pending.UnsafeOnCompleted(_onProbeEnded);
        }
        catch (Exception ex) { End(default, ex); }
    }

    private void OnProbeEnded()
    {
        ProbeResult result;
        try { result = _pending.GetResult(); }
        catch (Exception ex) { End(default, ex); return; }
        finally { _pending = default; }
        End(result, null);
    }

    private void End(ProbeResult result, Exception? error)
    {
        bool release;
        lock (_lock)
        {
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            if (release = LetGo()) (Result, Error, Ended) = (result, error, true);
            _running = false;
            _context = null;
        }
        if (release) _wait.SetResult(true); // outside the lock: the caller's continuation may run here
    }

    // The timeout cancels the probe's token; a grace later the caller stops waiting. A tick left over from an earlier
    // check (a timer fires on its own thread, possibly just after being changed) is told apart by the elapsed time.
    private void OnTimer()
    {
        bool cancel = false, release = false;
        lock (_lock)
        {
            if (!_running) return;
            var elapsed = _time.GetElapsedTime(_started);
            if (!_cancelled && elapsed >= _timeout) cancel = _cancelled = _timedOut = true;
            if (elapsed >= _timeout + AbandonGrace) release = LetGo();
            else _timer.Change((_cancelled ? _timeout + AbandonGrace : _timeout) - elapsed, Timeout.InfiniteTimeSpan);
            if (cancel) _source.CancelAsync(); // no callback runs under the lock: CancelAsync runs them on the pool
        }
        if (release) _wait.SetResult(true);
    }

    private void OnStopping()
    {
        bool release;
        lock (_lock)
        {
            if (!_running) return;
            _cancelled = true;
            _source.CancelAsync();
            release = LetGo();
        }
        if (release) _wait.SetResult(true);
    }

    private bool LetGo()
    {
        if (!_waiting) return false;
        _waiting = false;
        return true;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _timer.Dispose();
            if (!_running) _source.Dispose(); // an abandoned probe may still read its token
        }
    }

    void IValueTaskSource.GetResult(short token) => _wait.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _wait.GetStatus(token);
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _wait.OnCompleted(continuation, state, token, flags);
}
