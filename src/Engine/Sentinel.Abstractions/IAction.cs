using Microsoft.Extensions.Logging;

namespace Sentinel.Abstractions;

/// <summary>
/// Notifies or remediates. Unlike a probe, an action throws on failure: the engine isolates it from
/// other actions, records the failure and retries according to the rule's policy.
/// </summary>
public interface IAction
{
    /// <summary>Performs the action once.</summary>
    /// <param name="context">Why the action runs and what the rule last measured.</param>
    /// <param name="cancellationToken">Cancelled at the action's timeout or when Sentinel stops.</param>
    ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken);
}

/// <summary>What the engine tells an action about why it runs.</summary>
public sealed class ActionContext
{
    /// <summary>The rule on whose behalf the action runs.</summary>
    public required string RuleName { get; init; }

    /// <summary>The event that triggered the action, e.g. <c>down</c>, <c>resolved</c>, <c>test</c>.</summary>
    public required string Event { get; init; }

    /// <summary>A human summary of what happened, ready to be sent.</summary>
    public required string Message { get; init; }

    /// <summary>The last probe result of the rule, when there is one.</summary>
    public ProbeResult? LastResult { get; init; }

    /// <summary>The clock to use.</summary>
    public required TimeProvider TimeProvider { get; init; }

    /// <summary>A logger scoped to the rule and action.</summary>
    public required ILogger Logger { get; init; }

    /// <summary>For a remediation, which attempt this is in the current episode (1, 2, ...); 0 for notifications.</summary>
    public int Attempt { get; init; }

    /// <summary>
    /// Where an action writes what it wants shown with the outcome (a command's stdout and stderr, say). The last
    /// lines are kept in the remediation event, the incident and the alert.
    /// </summary>
    public ActionOutput Output { get; init; } = new();

    /// <summary>Pairs the pings of one run (a start with its finish), for dead-man's-switch actions.</summary>
    public Guid? RunId { get; init; }

    /// <summary>For a notification channel: what to send. Null for remediations.</summary>
    public Notification? Notification { get; init; }
}

/// <summary>The last lines an action reported; thread-safe, bounded (older lines are dropped).</summary>
public sealed class ActionOutput(int maxLines = 50)
{
    private readonly Queue<string> _lines = new();
    private readonly Lock _lock = new();

    /// <summary>How many lines are kept.</summary>
    public int MaxLines { get; } = Math.Max(1, maxLines);

    /// <summary>Appends one line (longer lines are cut to 1000 characters).</summary>
    public void WriteLine(string line)
    {
        if (line.Length > 1000) line = line[..997] + "...";
        lock (_lock)
        {
            _lines.Enqueue(line);
            while (_lines.Count > MaxLines) _lines.Dequeue();
        }
    }

    /// <summary>The lines kept, oldest first.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_lock) return _lines.ToArray(); }
    }
}
