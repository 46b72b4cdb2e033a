namespace Sentinel.Engine.Model;

internal enum SupervisionState
{
    /// <summary>The supervised service runs.</summary>
    Running,

    /// <summary>It is not running and Sentinel is starting it (an attempt runs or its backoff is counting down).</summary>
    Restarting,

    /// <summary>The restart budget is spent: one attempt every retry-after until it is stable.</summary>
    GaveUp,

    /// <summary>It is not running and nothing will start it (restart: never, a clean exit under on-failure, paused).</summary>
    Stopped,

    /// <summary>A rule with remediation and no service: watching.</summary>
    Watching,
}

/// <summary>
/// What `sentinel status`, its --json and the status page show of a rule's service and remediation: the PID and
/// uptime, restarts in total and within the budget window, and a given-up state with the time of the next attempt,
/// with one line that says it all (the same on every surface).
/// </summary>
internal sealed record SupervisionView(SupervisionState State, int? Pid, DateTimeOffset? StartedAt, TimeSpan? Uptime, long Restarts, int RestartsInWindow,
    TimeSpan Window, DateTimeOffset? NextAttemptAt, string Summary)
{
    internal static SupervisionView Of(RuleDefinition def, RemediationState s, SupervisedProcess? running, bool restarting, DateTimeOffset now)
    {
        var window = def.Policy.BudgetWithin;
        var inWindow = s.Attempts.Count(a => a > now - window);
        var supervised = def.Supervise is not null;
        var state = !supervised ? s.GaveUp ? SupervisionState.GaveUp : SupervisionState.Watching
            : running is not null ? SupervisionState.Running
            : s.GaveUp ? SupervisionState.GaveUp
            : restarting ? SupervisionState.Restarting
            : SupervisionState.Stopped;
        DateTimeOffset? next = state is SupervisionState.GaveUp or SupervisionState.Restarting && s.NextAttemptAt is { } n ? n : null;
        TimeSpan? uptime = running is null ? null : now - running.StartedAt;

        var noun = supervised ? "restart" : "remediation";
        var parts = new List<string>();
        switch (state)
        {
            case SupervisionState.Running: parts.Add($"pid {running!.Pid}, up {Duration.FormatCoarse(uptime!.Value)}"); break;
            case SupervisionState.Restarting: parts.Add(next is { } r && r > now ? $"restarting: next attempt {At(r, now)}" : "restarting"); break;
            case SupervisionState.GaveUp: parts.Add(next is { } g ? $"gave up — next attempt {At(g, now)}" : "gave up"); break;
            case SupervisionState.Stopped: parts.Add(s.Held ? $"stopped by the operator (sentinel start {def.Name})" : "stopped"); break;
        }
        parts.Add($"{s.Total} {noun}{(s.Total == 1 ? "" : "s")} ({inWindow} in the last {Duration.Format(window)})");
        return new SupervisionView(state, running?.Pid, running?.StartedAt, uptime, s.Total, inWindow, window, next, string.Join(" · ", parts));
    }

    // "08:28:10 (in 4m)", in the box's local time; "08:28:10 (due now)" once due.
    private static string At(DateTimeOffset t, DateTimeOffset now)
        => $"{t.ToLocalTime():HH:mm:ss} ({(t > now ? "in " + Duration.FormatCoarse(t - now, roundUp: true) : "due now")})";
}
