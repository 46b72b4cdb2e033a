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
                loggerFactory.CreateLogger<QuartzRuleScheduler>().LogWarning("Cluster slot {Slot} was gone from the cluster's store (removed while this node was taken for down); made again", slot.Key);
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
                loggerFactory.CreateLogger<QuartzRuleScheduler>().LogInformation("Cluster slot {Slot} removed: no live node's rules fire by it any more", key);
            }
            foreach (var key in _unneeded.Keys.Where(k => !present.Contains(k)).ToList()) _unneeded.TryRemove(key, out _);
        }
        finally { _changes.Release(); }
    }
}
