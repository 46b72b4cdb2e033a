using Sentinel.Engine.Configuration;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Model;

/// <summary>Something that happened in the engine, published on the <see cref="Events.EventBus"/>.</summary>
internal abstract record EngineEvent(DateTimeOffset At);

/// <summary>A rule changed state. Remediation, notification and heartbeat subscribe to these.</summary>
internal sealed record RuleTransition(string Rule, RuleStatus From, RuleStatus To, DateTimeOffset When, CheckRecord? Check, RuleState State)
    : EngineEvent(When);

/// <summary>A configuration was applied; lists the rules added, changed and removed.</summary>
internal sealed record ConfigApplied(DateTimeOffset When, IReadOnlyList<string> Added, IReadOnlyList<string> Changed, IReadOnlyList<string> Removed)
    : EngineEvent(When);

/// <summary>A changed configuration was rejected; the running one stays.</summary>
internal sealed record ConfigRejected(DateTimeOffset When, IReadOnlyList<ConfigError> Errors) : EngineEvent(When);

/// <summary>Sentinel could not write what it must keep (a full disk, a read-only file system): it is kept in memory meanwhile.</summary>
internal sealed record StateWriteFailed(DateTimeOffset When, string Reason) : EngineEvent(When);

/// <summary>Everything is written again; <see cref="Since"/> is when writes began to fail, <see cref="Reason"/> why.</summary>
internal sealed record StateWriteRecovered(DateTimeOffset When, DateTimeOffset Since, string Reason) : EngineEvent(When);
