using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Scheduling;

// Cluster mode: keeping the cluster's store holding the slots the live nodes need, and no others.
internal sealed partial class QuartzRuleScheduler
{
    // Slots of the cluster's store no live node needs, and since when this node has seen them so.
    private readonly ConcurrentDictionary<string, DateTimeOffset> _unneeded = new(StringComparer.Ordinal);

    public IReadOnlyList<string> SharedSlots => [.. _slots.Values.Where(s => s.Shared).Select(s => s.Key).Order(StringComparer.Ordinal)];

    private Task EnsureSharedAsync(Slot slot, CancellationToken cancellationToken) => slot.Every is { } every
        ? _clusterSlots!.EnsureAsync(slot.Key, every, slot.Phase, cancellationToken)
        : _clusterSlots!.EnsureCronAsync(slot.Key, slot.Cron!, cancellationToken);

    public Task FireSharedAsync(CancellationToken cancellationToken) => _clusterSlots?.FireAsync(cancellationToken) ?? Task.CompletedTask;

    public async Task<int> SpreadSharedAsync(Func<string, IReadOnlyList<string>> nodesFor, CancellationToken cancellationToken)
    {
        if (_clusterSlots is not { } shared) return 0;
        await _changes.WaitAsync(cancellationToken);
        try { return await shared.SpreadAsync(nodesFor, cancellationToken); }
        finally { _changes.Release(); }
    }

    /// <summary>
    /// A slot is removed only after it went unneeded through three check-ins: a node publishes the slots it needs at
    /// its next check-in after it made them, so a slot just made is never taken for a stale one.
    /// </summary>
    public async Task ReconcileSharedAsync(IReadOnlySet<string> neededElsewhere, CancellationToken cancellationToken)
    {
        if (_clusterSlots is not { } shared || cluster is null) return;
        await _changes.WaitAsync(cancellationToken);
        try
        {
            var present = await shared.KeysAsync(cancellationToken);
            foreach (var slot in _slots.Values.Where(s => s.Shared && !present.Contains(s.Key)))
            {
                Log.LogWarning("Cluster slot {Slot} was gone from the cluster's store (removed while this node was taken for down); made again", slot.Key);
                await EnsureSharedAsync(slot, cancellationToken);
            }
            var now = (time ?? TimeProvider.System).GetUtcNow();
            foreach (var key in present)
            {
                if (neededElsewhere.Contains(key) || _slots.ContainsKey(key))
                {
                    _unneeded.TryRemove(key, out _);
                    continue;
                }
                var since = _unneeded.GetOrAdd(key, now);
                if (now - since < cluster.CheckinInterval * 3) continue;
                await shared.RemoveAsync(key, cancellationToken);
                _unneeded.TryRemove(key, out _);
                Log.LogInformation("Cluster slot {Slot} removed: no live node's rules fire by it any more", key);
            }
            foreach (var key in _unneeded.Keys.Where(k => !present.Contains(k)).ToList()) _unneeded.TryRemove(key, out _);
            foreach (var stall in await shared.RepairAsync(key => _slots.TryGetValue(key, out var s) && s.Shared ? OverdueAfter(s) : null, OverdueAfter(null), now, cancellationToken))
                Stalled(Log, stall.Slot, stall.Due, stall.State, stall.Next);
        }
        finally { _changes.Release(); }
    }

    /// <summary>
    /// How long after its due time no node firing a slot is a stall, not a failover: Quartz takes a node for dead two
    /// check-ins after its last, and a slot may lose a fire on its way (found late); a cron slot has no interval.
    /// </summary>
    private TimeSpan OverdueAfter(Slot? slot)
        => cluster!.CheckinInterval * 2 + (slot?.Every is { } every ? TimeSpan.FromTicks(Math.Max(every.Ticks * 2, cluster.CheckinInterval.Ticks)) : cluster.CheckinInterval);

    [LoggerMessage(EventId = 133, Level = LogLevel.Warning, Message = "Cluster slot {Slot} was due at {Due:HH:mm:ss.fff} and no node fired it (its trigger is {State} in the cluster's store); made again, next due at {Next:HH:mm:ss.fff}")]
    private static partial void Stalled(ILogger logger, string slot, DateTimeOffset due, Quartz.TriggerState state, DateTimeOffset next);
}
