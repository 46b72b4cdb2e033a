using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Runtime;

/// <summary>One check of a rule as its observers see it, after the thresholds have judged it.</summary>
/// <param name="CountsOnly">Not a check of the rule's probe (a supervised service's exit): it counts as a failed check in
/// the counters, metrics and history, but does not move thresholds, remediation or pings.</param>
internal sealed record CheckObservation(RuleDefinition Rule, CheckRecord Check, RuleState State, RuleTransition? Transition, bool CountsOnly = false);

/// <summary>What follows a check or a transition: metrics, history, remediation, pings. Either part may be left out.</summary>
internal sealed record CheckObserver(string Name, Action<CheckObservation>? OnCheck = null, Action<RuleTransition>? OnTransition = null);

/// <summary>
/// Every observer of checks, called the same way and isolated from each other (as Serilog's SafeAggregateSink): one
/// that throws is logged and the others still run, and the check still counts.
/// </summary>
internal sealed partial class CheckObservers(ILogger logger)
{
    private volatile CheckObserver[] _observers = [];

    public void Add(CheckObserver observer)
    {
        lock (this) _observers = [.. _observers, observer];
    }

    public void Check(CheckObservation observation)
    {
        foreach (var o in _observers)
            if (o.OnCheck is { } f) Safe(o, observation.Rule.Name, f, observation);
    }

    public void Transition(RuleTransition transition)
    {
        foreach (var o in _observers)
            if (o.OnTransition is { } f) Safe(o, transition.Rule, f, transition);
    }

    // The observer and its argument apart, not a closure: nothing allocated per observer and check.
    private void Safe<T>(CheckObserver observer, string rule, Action<T> call, T arg)
    {
        try { call(arg); }
        catch (Exception ex) { LogObserverFailed(logger, observer.Name, rule, ex); }
    }

    [LoggerMessage(EventId = 27, Level = LogLevel.Error, Message = "The {Observer} observer failed on a check of {Rule}; the others went on")]
    private static partial void LogObserverFailed(ILogger logger, string observer, string rule, Exception ex);
}
