using Sentinel.Abstractions;

namespace Sentinel.Engine.Notifications;


/// <summary>What the policy reads of the engine: the configuration and the rules' states.</summary>
internal sealed record IncidentWorld(SentinelConfig Config, Func<string, RuleState?> State)
{
    public RuleDefinition? Rule(string name) => Config.Rules.FirstOrDefault(r => r.Name == name);

    // Sentinel's own trouble is not any rule's maintenance.
    public MaintenanceWindow? Muting(string rule, DateTimeOffset at)
        => rule == IncidentPolicy.EngineRule ? null : Config.Maintenance.FirstOrDefault(w => w.Covers(rule) && w.OpenUntil(at) is not null);
}

/// <summary>A change to an open incident the policy decided (applied to it by the notification center).</summary>
internal sealed record IncidentChange(Incident Incident)
{
    public DateTimeOffset? ClosedAt { get; init; }
    public DateTimeOffset? AckedAt { get; init; }
    public bool Unsuppressed { get; init; }
    public bool Unmuted { get; init; }
    public DateTimeOffset? NotifiedAt { get; init; }
}

/// <summary>
/// What the policy decided about one event: an incident opened, changes to open ones, new outbox messages (numbered when
/// applied), pending ones cancelled or amended, a crash noted or cleared; committed in one transaction with the state of
/// <see cref="StateOf"/>. <see cref="Commits"/> is false when nothing is to be written at all.
/// </summary>
internal sealed class IncidentDecision
{
    public bool Commits { get; init; } = true;
    public string? StateOf { get; init; }
    public Incident? Opened { get; init; }
    public List<IncidentChange> Changes { get; } = [];
    public List<OutboxMessage> Messages { get; } = [];
    public List<OutboxMessage> Cancelled { get; } = [];
    public List<(OutboxMessage Message, NotificationItem Item)> Amended { get; } = [];
    /// <summary>A crash to wait for its restart (amended into its message), or (with <c>At</c> null) one no longer waited for.</summary>
    public (string Rule, DateTimeOffset? At)? Crash { get; set; }

    public static IncidentDecision Nothing => new() { Commits = false };
}

/// <summary>
/// When Sentinel tells whom what: the incident lifecycle as one pure function. Given the open incidents and the outbox
/// (<see cref="IncidentBook"/>), the configuration and the rules' states (<see cref="IncidentWorld"/>) and one event at
/// one time, it returns what changes (<see cref="IncidentDecision"/>): it reads no clock, writes nothing, changes none
/// of what it is given. The notification center applies the decision, commits it with the rule's state, and
/// dispatches the outbox.
/// </summary>
internal static partial class IncidentPolicy
{
    /// <summary>The incident of Sentinel itself (its state cannot be written): not a rule name (those start with a letter or digit).</summary>
    public const string EngineRule = "(sentinel)";

    /// <summary>What a transition, a remediation event or a state write failure or recovery changes.</summary>
    public static IncidentDecision On(IncidentBook book, IncidentWorld world, EngineEvent e) => e switch
    {
        RuleTransition { To: RuleStatus.Down } t when world.Rule(t.Rule) is { } def && def.AlertOn.Contains(AlertOn.Down)
            => Open(book, world, def, NotificationKind.Down, t.Check?.Description, t.When, SeenLines(t.Check)),
        RuleTransition { To: RuleStatus.Healthy or RuleStatus.Paused } t when world.Rule(t.Rule) is { } def
            => Close(book, world, def.Name, def, t.When, t.To == RuleStatus.Paused ? "paused" : t.Check?.Description),
        StateWriteFailed f => OpenEngine(book, world, f.Reason, f.When),
        StateWriteRecovered r => Close(book, world, EngineRule, null, r.When, $"written again after {Duration.Format(r.When - r.Since)} ({r.Reason}); nothing was lost"),
        RemediationEvent { Kind: RemediationEventKind.GaveUp } g when world.Rule(g.Rule) is { } def && def.AlertOn.Contains(AlertOn.GaveUp)
            => Open(book, world, def, NotificationKind.GaveUp, g.Message, g.When, g.Output),
        RemediationEvent { Kind: RemediationEventKind.Remediating, RateExceeded: { } count } r when world.Rule(r.Rule) is { } def && def.AlertOn.Contains(AlertOn.RestartRate)
            => Tell(book, world, def, NotificationKind.RestartRate,
                $"remediated {count} times within {Duration.Format(def.RestartRate.Within)} (limit {def.RestartRate.Max}): {r.Message}", r.When, []),
        RemediationEvent { Kind: RemediationEventKind.RemediationFailed } f when world.Rule(f.Rule) is { } def => RemediationFailed(book, world, def, f),
        RemediationEvent { Kind: RemediationEventKind.Exited } x when world.Rule(x.Rule) is { } def && def.AlertOn.Contains(AlertOn.Exited) => Exited(book, world, def, x),
        RemediationEvent { Kind: RemediationEventKind.Remediated } done when world.Rule(done.Rule) is { } def && def.AlertOn.Contains(AlertOn.Exited)
            => AmendCrash(book, world, def, done),
        _ => IncidentDecision.Nothing,
    };

    // A restart that failed: the crash it followed is amended (alert-on: exited), the failure told (remediation-failed).
    private static IncidentDecision RemediationFailed(IncidentBook book, IncidentWorld world, RuleDefinition def, RemediationEvent failed)
    {
        var amended = def.AlertOn.Contains(AlertOn.Exited) ? AmendCrash(book, world, def, failed) : IncidentDecision.Nothing;
        if (!def.AlertOn.Contains(AlertOn.RemediationFailed)) return amended;
        var told = Tell(book, world, def, NotificationKind.RemediationFailed, failed.Message, failed.When, failed.Output);
        var both = new IncidentDecision { Commits = amended.Commits || told.Commits, StateOf = def.Name, Crash = amended.Crash };
        both.Amended.AddRange(amended.Amended);
        both.Messages.AddRange(told.Messages);
        return both;
    }

    private static IncidentDecision Exited(IncidentBook book, IncidentWorld world, RuleDefinition def, RemediationEvent exit)
    {
        var told = Tell(book, world, def, NotificationKind.Exited, exit.Message.Replace("the service ", def.Name + " ", StringComparison.Ordinal), exit.When, exit.Output);
        var decision = told.Commits ? told : new IncidentDecision { Commits = false };
        decision.Crash = (def.Name, exit.When);
        return decision;
    }

    // The restart that followed a crash: added to the crash's message while it still waits (group-wait), so one
    // message says both ("bot (pid 41) was killed by signal 9; restarted in 120ms: started pid 4242").
    private static IncidentDecision AmendCrash(IncidentBook book, IncidentWorld world, RuleDefinition def, RemediationEvent after)
    {
        if (!book.Crashes.TryGetValue(def.Name, out var crashedAt)) return IncidentDecision.Nothing;
        var waiting = book.Pending.Where(m => m.Rule == def.Name && m.Status == OutboxStatus.Pending && m.SendingSince is null && m.Item.Kind == NotificationKind.Exited && m.CreatedAt == crashedAt).ToList();
        var decision = waiting.Count == 0 ? new IncidentDecision { Commits = false } : new IncidentDecision { StateOf = def.Name };
        decision.Crash = (def.Name, null);
        var took = Duration.Format(after.When - crashedAt);
        var outcome = after.Kind == RemediationEventKind.Remediated ? $"restarted in {took}: {after.Message}" : $"the restart failed after {took}: {after.Message}";
        foreach (var m in waiting) decision.Amended.Add((m, m.Item with { Description = $"{m.Item.Description}; {outcome}" }));
        return decision;
    }

    // What the probe saw line by line (data "lines": log-regex's matched lines and their context), shown in the alert.
    public static IReadOnlyList<string>? SeenLines(CheckRecord? check)
        => check?.Data?.TryGetValue("lines", out var value) == true && value is IEnumerable<string> lines ? lines.ToList() : null;

    /// <summary>A rule down (or out of restarts): an incident opened, alerted for unless a parent is down or a maintenance window mutes it.</summary>
    public static IncidentDecision Open(IncidentBook book, IncidentWorld world, RuleDefinition def, string cause, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
    {
        if (book.Open.TryGetValue(def.Name, out var existing))
        {
            // Already open (down, then the restart budget ran out): tell the channels already told, once.
            if (cause != NotificationKind.GaveUp || existing.SuppressedBy is not null || existing.MutedBy is not null) return IncidentDecision.Nothing;
            var extra = new IncidentDecision { StateOf = def.Name };
            extra.Messages.AddRange(Immediate(def).Select(c => NewMessage(world, existing, def.Name, c, NotificationKind.GaveUp, description, at, output)));
            return extra;
        }
        var incident = new Incident { Id = book.PeekIncidentId(), Rule = def.Name, Cause = cause, OpenedAt = at, Description = description };
        incident.SuppressedBy = def.DependsOn.FirstOrDefault(p => world.State(p)?.Status == RuleStatus.Down || book.Open.ContainsKey(p));
        if (incident.SuppressedBy is null) incident.MutedBy = world.Muting(def.Name, at)?.Name;
        var decision = new IncidentDecision { StateOf = def.Name, Opened = incident };
        if (incident.SuppressedBy is null && incident.MutedBy is null) decision.Messages.AddRange(Messages(world, def, incident, cause, description, at, output));
        return decision;
    }

    // Sentinel's own trouble goes to the engine channels (notifications.engine), and is resolved when it is over.
    private static IncidentDecision OpenEngine(IncidentBook book, IncidentWorld world, string reason, DateTimeOffset at)
    {
        if (book.Open.ContainsKey(EngineRule)) return IncidentDecision.Nothing;
        var incident = new Incident { Id = book.PeekIncidentId(), Rule = EngineRule, OpenedAt = at, Description = reason };
        var decision = new IncidentDecision { Opened = incident };
        decision.Messages.AddRange(world.Config.EngineChannels.Select(c => NewMessage(world, incident, EngineRule, c, NotificationKind.Down, reason, at)));
        return decision;
    }

    // A rule's channels: the first message now (after group-wait, and min-down if set), escalations at their time.
    private static List<OutboxMessage> Messages(IncidentWorld world, RuleDefinition def, Incident incident, string kind, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
        => def.Notify.Select(n =>
        {
            var m = NewMessage(world, incident, def.Name, n.Channel, n.After > TimeSpan.Zero ? NotificationKind.Escalation : kind, description, at, output);
            if (n.After > TimeSpan.Zero) { m.DueAt = incident.OpenedAt + n.After; m.Groupable = false; }
            else if (incident.OpenedAt + def.MinDown > m.DueAt) m.DueAt = incident.OpenedAt + def.MinDown; // flap damping: told only if still down then
            return m;
        }).ToList();

    private static IEnumerable<string> Immediate(RuleDefinition def) => def.Notify.Where(n => n.After == TimeSpan.Zero).Select(n => n.Channel).Distinct();

    /// <summary>A message not yet numbered (the notification center numbers it when it applies the decision).</summary>
    public static OutboxMessage NewMessage(IncidentWorld world, Incident? incident, string rule, string channel, string kind, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
    {
        var state = rule == EngineRule ? null : world.State(rule);
        var status = rule == EngineRule ? (kind == NotificationKind.Resolved ? "healthy" : "down") : state?.Status.ToString().ToLowerInvariant() ?? "unknown";
        return new OutboxMessage
        {
            IncidentId = incident?.Id, Rule = rule, Channel = channel, CreatedAt = at, DueAt = at + world.Config.GroupWait,
            Item = new NotificationItem(rule, kind, status, incident?.OpenedAt ?? at, description, incident?.Id, output,
                Restarts: state?.Remediation?.Total is > 0 and var r ? r : null),
        };
    }

    // Something that happened to a rule (exited, restart rate, remediation failed): told to its immediate channels,
    // unless its incident is held back (a parent down) or a maintenance window mutes the rule.
    private static IncidentDecision Tell(IncidentBook book, IncidentWorld world, RuleDefinition def, string kind, string description, DateTimeOffset at, IReadOnlyList<string> output)
    {
        book.Open.TryGetValue(def.Name, out var incident);
        if (incident?.SuppressedBy is not null || incident?.MutedBy is not null || world.Muting(def.Name, at) is not null) return IncidentDecision.Nothing;
        var decision = new IncidentDecision { StateOf = def.Name };
        decision.Messages.AddRange(Immediate(def).Select(c => NewMessage(world, incident, def.Name, c, kind, description, at, output)));
        return decision;
    }
}
