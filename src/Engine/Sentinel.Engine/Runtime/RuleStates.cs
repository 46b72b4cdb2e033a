using System.Collections.Concurrent;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// Every rule's state, the one writer of it: an update reads and replaces a rule's state under one lock (a check, an
/// exit, a pause, a remediation step and a config change never overwrite each other), and hands what changed to the
/// persister. Reads take no lock.
/// </summary>
internal sealed class RuleStates(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, RuleState> _states = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Where changed states go to be written (set once the engine has one).</summary>
    public State.StatePersister? Persister { get; set; }

    public RuleState? Get(string rule) => _states.TryGetValue(rule, out var s) ? s : null;

    public ICollection<string> Rules => _states.Keys;

    /// <summary>What the store kept: from the last run, before anything runs, or (in a cluster) of rules this node takes over.</summary>
    public void Load(IEnumerable<KeyValuePair<string, RuleState>> stored)
    {
        lock (_gate)
            foreach (var (rule, state) in stored) _states[rule] = state;
    }

    /// <summary>
    /// Replaces the rule's state (a new one if it has none) by what <paramref name="update"/> makes of it, and marks it
    /// to be written; an update that returns the state it was given writes nothing. A new state starts at
    /// <paramref name="since"/> (default: now). Returns the new state and the update's result.
    /// </summary>
    public (RuleState State, T Result) Update<T>(string rule, Func<RuleState, (RuleState Next, T Result)> update, bool onlyIfKnown = false, DateTimeOffset? since = null)
        => Update(rule, static (current, f) => f(current), update, onlyIfKnown, since);

    /// <inheritdoc cref="Update{T}(string, Func{RuleState, ValueTuple{RuleState, T}}, bool, DateTimeOffset?)"/>
    /// <remarks>With what the update needs passed in, so that a static lambda needs no closure (the check path).</remarks>
    public (RuleState State, T Result) Update<TArg, T>(string rule, Func<RuleState, TArg, (RuleState Next, T Result)> update, TArg arg, bool onlyIfKnown = false,
        DateTimeOffset? since = null)
    {
        RuleState next;
        T result;
        bool routine;
        lock (_gate)
        {
            var known = _states.GetValueOrDefault(rule);
            if (known is null && onlyIfKnown) return (null!, default!);
            var current = known ?? RuleState.New(rule, since ?? time.GetUtcNow());
            (next, result) = update(current, arg);
            if (ReferenceEquals(next, current)) return (next, result);
            _states[rule] = next;
            routine = known is not null && Routine(known, next);
        }
        Persister?.MarkDirty(next, routine);
        return (next, result);
    }

    // A change of check times alone: the check count and the last check, and a healthy rule's run of successes. A
    // failure towards a threshold, a success towards recovery, a probe's or a remediation's state are not.
    private static bool Routine(RuleState current, RuleState next)
        => next.Status == current.Status && next.Since == current.Since && next.ConsecutiveFailures == current.ConsecutiveFailures
            && (next.ConsecutiveSuccesses == current.ConsecutiveSuccesses || next.Status == RuleStatus.Healthy)
            && next.Failures == current.Failures && ReferenceEquals(next.ProbeState, current.ProbeState)
            && ReferenceEquals(next.Remediation, current.Remediation) && next.ConfigPaused == current.ConfigPaused;

    /// <summary>Asks for what changed to be written soon (a transition: worth a write now, not at the next flush).</summary>
    public void FlushSoon() => Persister?.FlushSoon();

    /// <summary>Something status.json shows changed beside the rules' states (a config applied or rejected, an address).</summary>
    public void StatusChanged()
    {
        Persister?.MarkStatusChanged();
        Persister?.FlushSoon();
    }

    /// <summary>Forgets a rule (removed from the configuration) and its stored state.</summary>
    public void Remove(string rule)
    {
        _states.TryRemove(rule, out _);
        Persister?.MarkRemoved(rule);
    }
}
