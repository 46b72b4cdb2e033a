using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Heartbeat;

/// <summary>
/// The engine's own dead-man's switch: <c>start</c> when Sentinel starts, a success ping every <c>every</c> — but
/// only while the scheduler is really running rules, so a hung engine falls silent and the outside switch fires —
/// and <c>fail</c> with the reason on a fatal error. Pings are retried with backoff and never block anything.
/// </summary>
internal sealed partial class HeartbeatSender : IAsyncDisposable
{
    private readonly HeartbeatDefinition _definition;
    private readonly Lane[] _lanes;
    private readonly Func<(bool Alive, string Summary)> _probe;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ResiliencePipeline _retry;
    private readonly Guid _run = Guid.NewGuid();
    private Task? _loop;

    public HeartbeatSender(HeartbeatDefinition definition, IReadOnlyList<IAction> targets, Func<(bool Alive, string Summary)> probe, TimeProvider time, ILogger logger)
    {
        _definition = definition;
        _lanes = [.. targets.Select(t => new Lane(t))];
        _probe = probe;
        _time = time;
        _logger = logger;
        _retry = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = 3, Delay = TimeSpan.FromSeconds(1), BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not ActionFailedException { Permanent: true } && e is not OperationCanceledException),
            })
            .AddTimeout(TimeSpan.FromSeconds(30))
            .Build();
    }

    /// <summary>How many success pings were sent, and withheld because the scheduler was not running.</summary>
    public long Sent => Interlocked.Read(ref _sent);
    public long Withheld => Interlocked.Read(ref _withheld);
    private long _sent;
    private long _withheld;

    /// <summary>Pings waiting for the one before them (to the same target) to finish.</summary>
    internal int Waiting => Volatile.Read(ref _waiting);
    private int _waiting;

    public void Start()
    {
        _ = SendAsync("start", $"Sentinel {EngineInfo.Version} starting on {Environment.MachineName}", _stop.Token);
        _loop = Task.Run(LoopAsync);
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try { await Task.Delay(_definition.Every, _time, _stop.Token); }
            catch (OperationCanceledException) { break; }
            var (alive, summary) = _probe();
            if (!alive)
            {
                Interlocked.Increment(ref _withheld);
                LogWithheld(_logger, summary);
                continue;
            }
            Interlocked.Increment(ref _sent);
            _ = SendAsync("success", summary, _stop.Token);
        }
    }

    /// <summary>Sends one ping (success, start, fail, log) to every target in the background, with retries.</summary>
    public void Send(string kind, string message) => _ = SendAsync(kind, message, _stop.Token);

    /// <summary>Sends <c>fail</c> with the reason and waits for it (bounded): Sentinel is about to exit.</summary>
    public Task FailAsync(string reason, TimeSpan within) => SendAsync("fail", reason, CancellationToken.None).WaitAsync(within, _time).ContinueWith(_ => { }, TaskScheduler.Default);

    /// <summary>Fire-and-forget pings for a fatal start-up failure, when no engine exists.</summary>
    public static Task FailAsync(IReadOnlyList<IAction> targets, string reason, TimeProvider time, ILogger logger, TimeSpan within)
    {
        var sender = new HeartbeatSender(new HeartbeatDefinition(TimeSpan.FromMinutes(1), []), targets, () => (false, ""), time, logger);
        return sender.FailAsync(reason, within);
    }

    private Task SendAsync(string kind, string message, CancellationToken cancellationToken)
        => Task.WhenAll(_lanes.Select(lane => SendAsync(lane, kind, message, cancellationToken)));

    // Each target's pings go out one at a time, in the order they were made: a success must never overtake the start
    // it pairs with (still being retried, say), or the switch sees a run start after it finished, never finishing,
    // and alerts; nor a rule's success its fail. The turn is taken here, on the caller's thread, so pings made one
    // after the other queue in that order (the semaphore lets async waiters in first come, first served); the target
    // is called on the thread pool, never on the caller's thread. A success that finds another success already
    // waiting is dropped: that one says the same, and a target that is down for long gets one ping when it is back.
    private async Task SendAsync(Lane lane, string kind, string message, CancellationToken cancellationToken)
    {
        var success = kind == "success";
        if (success && Interlocked.Exchange(ref lane.SuccessWaiting, 1) == 1) return;
        Interlocked.Increment(ref _waiting);
        try { await lane.Order.WaitAsync(cancellationToken); }
        catch (OperationCanceledException)
        {
            if (success) Volatile.Write(ref lane.SuccessWaiting, 0);
            return;
        }
        finally { Interlocked.Decrement(ref _waiting); }
        if (success) Volatile.Write(ref lane.SuccessWaiting, 0);
        try
        {
            var output = new ActionOutput(10);
            await Task.Run(async () => await _retry.ExecuteAsync(async ct => await lane.Target.ExecuteAsync(new ActionContext
            {
                RuleName = "(engine heartbeat)", Event = kind, Message = message, RunId = _run, TimeProvider = _time, Logger = _logger, Output = output,
            }, ct), cancellationToken), CancellationToken.None);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
        catch (Exception ex) { LogPingFailed(_logger, kind, ex.Message); }
        finally { lane.Order.Release(); }
    }

    private sealed class Lane(IAction target)
    {
        public IAction Target { get; } = target;
        public SemaphoreSlim Order { get; } = new(1, 1);
        public int SuccessWaiting;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null) await _loop;
        foreach (var lane in _lanes) (lane.Target as IDisposable)?.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Warning, Message = "Heartbeat withheld: {Reason}")]
    private static partial void LogWithheld(ILogger logger, string reason);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Heartbeat ping '{Kind}' failed: {Error}")]
    private static partial void LogPingFailed(ILogger logger, string kind, string error);
}
