using Sentinel.Abstractions;

namespace Sentinel.Engine.Notifications;

// Closing incidents (recovered, removed), acknowledging them, and what time alone changes (reminders, a maintenance window's end).
internal static partial class IncidentPolicy
{
    /// <summary>
    /// A rule healthy (or paused) again: its incident closed, what had not gone yet cancelled, every channel told of it
    /// told it is resolved, and every channel whose down message was still waiting told it was briefly down.
    /// </summary>
    public static IncidentDecision Close(IncidentBook book, IncidentWorld world, string rule, RuleDefinition? def, DateTimeOffset at, string? description)
    {
        if (!book.Open.TryGetValue(rule, out var incident)) return IncidentDecision.Nothing;
        var decision = new IncidentDecision { StateOf = def?.Name };
        decision.Changes.Add(new IncidentChange(incident) { ClosedAt = at });
        var cancelled = Cancellable(book, m => m.IncidentId == incident.Id);
        decision.Cancelled.AddRange(cancelled);
        // A down message being sent now is not cancelled (it may have arrived): when its channel accepts it, it
        // gets the resolved message (ResolvedAfterTheFact); if Sentinel is killed first, the next one closes it
        // (RecoverInFlightAsync). Neither told twice nor left with a DOWN.
        // Nothing that went down goes untold: a channel whose down message was still waiting (group-wait, or a
        // failing channel's retries) gets one message saying it was down and is resolved, unless the outage was
        // shorter than the rule's min-down (flap damping, asked for explicitly).
        var lasted = at - incident.OpenedAt;
        if (lasted >= (def?.MinDown ?? TimeSpan.Zero) && incident.SuppressedBy is null && incident.MutedBy is null)
            foreach (var untold in cancelled.Where(m => m.Item.Kind is NotificationKind.Down or NotificationKind.GaveUp && !incident.Notified.Contains(m.Channel)).GroupBy(m => m.Channel))
            {
                var m = BrieflyDown(world, incident, rule, untold.Key, at, untold.Select(d => d.Item.Output).FirstOrDefault(o => o is { Count: > 0 }));
                m.DueAt = untold.Min(d => d.DueAt); // when the down message would have gone: its group-wait already ran
                decision.Messages.Add(m);
            }
        if (def?.SendResolved ?? true)
            foreach (var channel in incident.Notified.Distinct())
                decision.Messages.Add(NewMessage(world, incident, rule, channel, NotificationKind.Resolved, description, at));
        ReleaseChildren(book, world, rule, at, decision);
        return decision;
    }

    /// <summary>The one message that tells a channel of an outage it was not told of while it lasted.</summary>
    public static OutboxMessage BrieflyDown(IncidentWorld world, Incident incident, string rule, string channel, DateTimeOffset end, IReadOnlyList<string>? output)
        => NewMessage(world, incident, rule, channel, NotificationKind.BrieflyDown,
            $"down for {Duration.Format(end - incident.OpenedAt)}, resolved: {incident.Description}", end, output);

    // Children held back while this rule was down: those still down are alerted for now.
    private static void ReleaseChildren(IncidentBook book, IncidentWorld world, string parent, DateTimeOffset at, IncidentDecision decision)
    {
        foreach (var child in book.Open.Values.Where(i => i.SuppressedBy == parent))
        {
            decision.Changes.Add(new IncidentChange(child) { Unsuppressed = true });
            if (world.Rule(child.Rule) is { } childDef && world.State(child.Rule)?.Status == RuleStatus.Down)
                decision.Messages.AddRange(Messages(world, childDef, child, child.Cause, child.Description, at));
        }
    }

    /// <summary>
    /// A rule removed from the configuration (edited out, or while Sentinel was stopped) cannot recover: its open
    /// incident is closed, and every channel that was told gets a resolved message saying why, instead of an incident
    /// left open for ever.
    /// </summary>
    public static IncidentDecision CloseRemoved(IncidentBook book, IncidentWorld world, string rule, DateTimeOffset at)
    {
        if (!book.Open.TryGetValue(rule, out var incident)) return IncidentDecision.Nothing;
        var decision = new IncidentDecision();
        decision.Changes.Add(new IncidentChange(incident) { ClosedAt = at });
        decision.Cancelled.AddRange(Cancellable(book, m => m.IncidentId == incident.Id));
        decision.Messages.AddRange(incident.Notified.Distinct().Select(channel => Removed(world, rule, channel, incident.OpenedAt, incident.Id, at)));
        ReleaseChildren(book, world, rule, at, decision);
        return decision;
    }

    private static OutboxMessage Removed(IncidentWorld world, string rule, string channel, DateTimeOffset since, long? incident, DateTimeOffset at) => new()
    {
        IncidentId = incident, Rule = rule, Channel = channel, CreatedAt = at, DueAt = at + world.Config.GroupWait,
        Item = new NotificationItem(rule, NotificationKind.Resolved, "removed", since, "the rule was removed from the configuration", incident),
    };

    /// <summary>An open incident acknowledged: its escalations and reminders stop. Nothing when there is no such open incident.</summary>
    public static IncidentDecision Ack(IncidentBook book, long id, DateTimeOffset now)
    {
        var incident = book.Open.Values.FirstOrDefault(i => i.Id == id);
        if (incident is null) return IncidentDecision.Nothing;
        var decision = new IncidentDecision { StateOf = incident.Rule };
        decision.Changes.Add(new IncidentChange(incident) { AckedAt = incident.AckedAt ?? now });
        decision.Cancelled.AddRange(Cancellable(book, m => m.IncidentId == id && m.Item.Kind is NotificationKind.Escalation or NotificationKind.Reminder));
        return decision;
    }

    // A message handed to its channel is never cancelled: it may already have arrived.
    private static List<OutboxMessage> Cancellable(IncidentBook book, Func<OutboxMessage, bool> which)
        => book.Pending.Where(m => m.Status == OutboxStatus.Pending && m.SendingSince is null && which(m)).ToList();

    /// <summary>An incident opened during a maintenance window that has ended: alerted for now if its rule is still down.</summary>
    public static IncidentDecision ReleaseMuted(IncidentWorld world, Incident incident, DateTimeOffset now)
    {
        if (incident.MutedBy is null || world.Muting(incident.Rule, now) is not null) return IncidentDecision.Nothing;
        var decision = new IncidentDecision();
        decision.Changes.Add(new IncidentChange(incident) { Unmuted = true });
        if (world.Rule(incident.Rule) is { } def && world.State(incident.Rule)?.Status == RuleStatus.Down)
            decision.Messages.AddRange(Messages(world, def, incident, incident.Cause, world.State(incident.Rule)?.LastCheck?.Description ?? incident.Description, now));
        foreach (var m in decision.Messages.Where(m => m.Groupable)) m.DueAt = now;
        return decision;
    }

    /// <summary>When an open incident is reminded of next (null: not, it is acknowledged, held back, muted, or the rule has no reminders).</summary>
    public static DateTimeOffset? NextReminder(IncidentWorld world, Incident i)
        => i.AckedAt is null && i.SuppressedBy is null && i.MutedBy is null && i.LastNotifiedAt is { } last && world.Rule(i.Rule)?.ReminderInterval is { } every ? last + every : null;

    /// <summary>An open incident whose reminder is due: every channel told of it is told it is still on.</summary>
    public static IncidentDecision Remind(IncidentWorld world, Incident incident, DateTimeOffset now)
    {
        if (NextReminder(world, incident) is not { } due || due > now || world.Rule(incident.Rule) is not { } def) return IncidentDecision.Nothing;
        var decision = new IncidentDecision();
        decision.Changes.Add(new IncidentChange(incident) { NotifiedAt = now });
        var still = world.State(def.Name)?.LastCheck?.Description ?? incident.Description;
        foreach (var channel in incident.Notified.Distinct())
        {
            var m = NewMessage(world, incident, def.Name, channel, NotificationKind.Reminder, still, now);
            m.DueAt = now;
            decision.Messages.Add(m);
        }
        return decision;
    }

    /// <summary>
    /// A "down" delivered after its incident closed (the send was in flight, or is sent again after a kill): the channel
    /// was told, so it gets the resolved message too. Its rule may have been removed meanwhile: it is told why it ended.
    /// </summary>
    public static OutboxMessage? ResolvedAfterTheFact(IncidentBook book, IncidentWorld world, OutboxMessage sent, DateTimeOffset now)
    {
        var def = world.Rule(sent.Rule);
        if (def is { SendResolved: false }) return null;
        // Told before (a reminder was in flight): the resolved message written at the close is waiting for this one.
        if (book.Pending.Any(p => p.Status == OutboxStatus.Pending && p.IncidentId == sent.IncidentId && p.Channel == sent.Channel && p.Item.Kind == NotificationKind.Resolved)) return null;
        if (def is null) return Removed(world, sent.Rule, sent.Channel, sent.Item.Since, sent.IncidentId, now);
        return new OutboxMessage
        {
            IncidentId = sent.IncidentId, Rule = sent.Rule, Channel = sent.Channel, CreatedAt = now, DueAt = now + world.Config.GroupWait,
            Item = new NotificationItem(def.Name, NotificationKind.Resolved, world.State(def.Name)?.Status.ToString().ToLowerInvariant() ?? "healthy", sent.Item.Since, null, sent.IncidentId),
        };
    }
}
