using Sentinel.Engine.Model;

namespace Sentinel.Engine;

// Cluster mode: a rule this node starts running (its first check here, or its slot come back from another node) is
// taken over from the shared database first: its state, then its incident and messages.
internal sealed partial class SentinelEngine
{
    private async Task AdoptAsync(IReadOnlyList<string> rules, CancellationToken cancellationToken)
    {
        if (_store is not IClusterStore cluster) return;
        var adopted = await cluster.AdoptAsync(rules, cancellationToken);
        _states.Load(adopted.States);
        if (_notifications is not null) await _notifications.AdoptAsync(rules, adopted, cancellationToken);
    }
}
