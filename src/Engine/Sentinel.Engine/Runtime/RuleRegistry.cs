using System.Collections.Concurrent;
using System.Collections.Immutable;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// The rules as they run: the running and waiting rules (one set, swapped at once by the config applier), and what a
/// rule owns for longer than one runtime: its remediator, its ping sender, since when it waits for a plugin. The
/// config applier is the one writer; the check pipeline, the observers and the views read it.
/// </summary>
internal sealed class RuleRegistry
{
    private volatile RuleSet _set = RuleSet.Empty;

    /// <summary>The running and the waiting rules, read together (a reader never sees a rule in neither).</summary>
    public RuleSet Set
    {
        get => _set;
        set => _set = value;
    }

    public ImmutableDictionary<string, RuleRuntime> Runtimes => _set.Runtimes;

    /// <summary>A rule's remediator (rules that remediate or supervise), kept across changes of its definition.</summary>
    public ConcurrentDictionary<string, RuleRemediator> Remediators { get; } = new(StringComparer.Ordinal);

    /// <summary>The pings a rule sends on its own checks (`ping:`).</summary>
    public ConcurrentDictionary<string, RulePing> Pings { get; } = new(StringComparer.Ordinal);

    /// <summary>Since when each waiting rule has been waiting for its plugin.</summary>
    public ConcurrentDictionary<string, DateTimeOffset> WaitingSince { get; } = new(StringComparer.Ordinal);

    public bool TryGetRuntime(string rule, out RuleRuntime runtime) => _set.Runtimes.TryGetValue(rule, out runtime!);
}

/// <summary>A rule's `ping:`: its sender, and when it last told a success (success pings are sent at most every ping-every).</summary>
internal sealed class RulePing(Heartbeat.HeartbeatSender sender, ActionDefinition definition)
{
    public Heartbeat.HeartbeatSender Sender { get; } = sender;
    public ActionDefinition Definition { get; } = definition;
    public long LastSuccessTicks;
}
