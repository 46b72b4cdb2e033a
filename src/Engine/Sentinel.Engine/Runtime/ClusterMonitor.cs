using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// This node's part in the cluster's membership: every check-in interval it says it is alive (and which rules and
/// slots it runs) and reads the others back into <see cref="ClusterMembership"/>; a stop says it left. What the
/// membership is for (the status of the whole cluster, the node rules that tell a dead node, the slots no node needs
/// any more) is done by whoever reads it, after each round (<see cref="Checked"/>).
/// </summary>
internal sealed partial class ClusterMonitor(IClusterStore store, ClusterSettings settings, ClusterMembership membership, Func<NodeCheckIn> me,
    TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private DateTimeOffset? _statesSince, _pingsSince;

    /// <summary>Called after each check-in that worked (on the monitor's loop; exceptions are logged).</summary>
    public Func<ClusterRead, CancellationToken, Task>? Checked { get; init; }

    /// <summary>Given the ping records read at each round, also before this node announces itself.</summary>
    public Action<IReadOnlyDictionary<string, PingRecord>>? Heard { get; init; }

    /// <summary>
    /// The cluster read before this node runs anything (so its node rules and status are whole from the start),
    /// without saying it is alive yet: a node that is still loading its rules must not be given slots, nor be
    /// taken for down when loading takes longer than a few check-ins.
    /// </summary>
    public Task ReadAsync(CancellationToken cancellationToken) => RoundAsync(cancellationToken, announce: false);

    /// <summary>The first check-in (once this node runs its rules), then one every interval.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await RoundAsync(cancellationToken);
        _loop = LoopAsync(_stop.Token);
    }

    /// <summary>A check-in now (after a change of the rules, so the others learn of it at once).</summary>
    public Task NowAsync(CancellationToken cancellationToken) => RoundAsync(cancellationToken);

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(settings.CheckinInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken)) await RoundAsync(cancellationToken);
        }
        catch (OperationCanceledException) { }
    }

    private readonly SemaphoreSlim _round = new(1, 1);
    private long _rounds;

    /// <summary>The other nodes' rule states are read at every this many check-ins.</summary>
    public const int StatesEvery = 3;

    private async Task RoundAsync(CancellationToken cancellationToken, bool announce = true)
    {
        await _round.WaitAsync(cancellationToken);
        try
        {
            ClusterRead read;
            // The others' rule states (what the status shows of them) every few check-ins: at 10,000 rules that read
            // is most of what a check-in costs, and a status a few seconds old is still current.
            var states = _rounds++ % StatesEvery == 0;
            try
            {
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                limit.CancelAfter(settings.CheckinInterval * 2);
                read = await store.CheckInAsync(announce ? me() : null, _statesSince, limit.Token, states, _pingsSince);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                var first = membership.Problem is null;
                membership.Failed(ex is OperationCanceledException ? "the database did not answer in time" : ex.Message);
                if (first) LogCheckInFailed(logger, membership.Problem!.Value.Reason);
                return;
            }
            if (membership.Problem is { } was) LogCheckInRecovered(logger, Duration.Format(time.GetUtcNow() - was.Since));
            membership.Update(read);
            // What was written in the last seconds is read again: a write whose transaction began before this read
            // and commits after it carries an earlier time.
            if (states) _statesSince = read.Now - TimeSpan.FromSeconds(10);
            _pingsSince = read.Now - TimeSpan.FromSeconds(10);
            Heard?.Invoke(read.Pings);
            if (announce && Checked is { } then)
            {
                try { await then(read, cancellationToken); }
                catch (Exception ex) when (ex is not OperationCanceledException) { LogAfterCheckInFailed(logger, ex.Message); }
            }
        }
        finally { _round.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is null)
        {
            _stop.Dispose(); // never said it was alive: nothing to take back
            return;
        }
        await _loop;
        try
        {
            // A node that stops on purpose says so: it is shown as stopped, and no node alerts on it.
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await store.LeaveAsync(limit.Token);
        }
        catch (Exception ex) { LogLeaveFailed(logger, ex.Message); }
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 900, Level = LogLevel.Warning, Message = "This node cannot check in with the cluster's database ({Reason}); the others will take it for down if this lasts")]
    private static partial void LogCheckInFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 901, Level = LogLevel.Information, Message = "This node checks in with the cluster again (after {Duration})")]
    private static partial void LogCheckInRecovered(ILogger logger, string duration);

    [LoggerMessage(EventId = 902, Level = LogLevel.Warning, Message = "After the cluster check-in: {Reason}")]
    private static partial void LogAfterCheckInFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 903, Level = LogLevel.Warning, Message = "Could not tell the cluster this node is stopping ({Reason}); the others will take it for down")]
    private static partial void LogLeaveFailed(ILogger logger, string reason);
}
