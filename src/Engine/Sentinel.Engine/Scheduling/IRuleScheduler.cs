using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Scheduling;

/// <summary>Fires rule checks on their schedules; the engine decides what a check does.</summary>
internal interface IRuleScheduler : IAsyncDisposable
{
    /// <summary>Starts firing. <paramref name="runRule"/> is called for each due rule with the time it was due (never
    /// twice at once for one rule), on the scheduler's thread: it must not block before its first await (the pipeline
    /// starts the probe apart); <paramref name="tick"/> about once a second while the scheduler really runs.</summary>
    Task StartAsync(Func<string, DateTimeOffset, CancellationToken, Task> runRule, Action tick, CancellationToken cancellationToken);

    /// <summary>Schedules the rule, replacing any schedule it had.</summary>
    Task ScheduleAsync(RuleDefinition rule, CancellationToken cancellationToken);

    Task UnscheduleAsync(string rule, CancellationToken cancellationToken);

    /// <summary>Cluster mode: the slots of the cluster's store this node's rules fire by.</summary>
    IReadOnlyList<string> SharedSlots => [];

    /// <summary>
    /// Cluster mode: this node's slots made again if they are gone from the cluster's store (removed by a node that
    /// took this one for down), and the slots no node needs (<paramref name="neededElsewhere"/>: the other live nodes'
    /// slots) removed once they have gone unneeded for a while.
    /// </summary>
    Task ReconcileSharedAsync(IReadOnlySet<string> neededElsewhere, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Cluster mode: the slots start firing on this node (once its rules are scheduled).</summary>
    Task FireSharedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Cluster mode: each slot spread over the live nodes that need it (<paramref name="nodesFor"/>); how many moved.</summary>
    Task<int> SpreadSharedAsync(Func<string, IReadOnlyList<string>> nodesFor, CancellationToken cancellationToken) => Task.FromResult(0);

    /// <summary>Stops firing and waits for running checks, up to the token.</summary>
    Task StopAsync(CancellationToken cancellationToken);
}
