using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Events;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Scheduling;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// One check of a rule, one way: the probe runs (isolated, bounded), what it said is cleared of secrets, the rule's
/// thresholds judge it (<see cref="RuleStates"/> writes the new state), the transition is published, every observer
/// sees the check, and the rule's `run:` actions follow. Scheduled checks, checks asked for by the API, by a ping and by
/// a supervised exit all take this path.
/// </summary>
internal sealed partial class CheckPipeline(RuleRegistry rules, RuleStates states, CheckObservers observers, EventBus events, TimeProvider time,
    ILoggerFactory loggerFactory, Func<Api.Redactor> redactor, CancellationToken stopping)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("Sentinel.Engine");
    private readonly ConcurrentDictionary<string, ILogger> _ruleLoggers = new(StringComparer.Ordinal);
    private volatile bool _hung;

    /// <summary>Observes how late each scheduled check started (for the load harness and, later, metrics).</summary>
    public Action<string, TimeSpan>? ScheduledStartObserver { get; set; }

    /// <summary>Told how late each scheduled check started (the metrics' histogram).</summary>
    public Action<TimeSpan>? Lateness { get; init; }

    /// <summary>Test hook: scheduled checks are dropped, as if the scheduler hung.</summary>
    public bool Hung
    {
        get => _hung;
        set => _hung = value;
    }

    public async Task RunScheduledAsync(string rule, DateTimeOffset scheduledAt, CancellationToken cancellationToken)
    {
        if (_hung) return;
        try
        {
            // The scheduler fires triggers due together in one batch, some a few milliseconds early. Where that is
            // more than 0.5% of the rule's period (sub-second rules), wait for the exact time.
            var early = scheduledAt - time.GetUtcNow();
            if (early > TimeSpan.Zero && early <= QuartzRuleScheduler.FireAheadWindow
                && rules.TryGetRuntime(rule, out var runtime) && runtime.Definition.Every is { } every && early * 200 > every)
                await Task.Delay(early, time, cancellationToken);
            var late = time.GetUtcNow() - scheduledAt;
            Lateness?.Invoke(late);
            ScheduledStartObserver?.Invoke(rule, late);
            await RunAsync(rule, cancellationToken);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested || cancellationToken.IsCancellationRequested) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    }

    /// <summary>Runs one check of a rule now, unless one is already running; returns the check, or null if skipped.</summary>
    public async Task<CheckRecord?> RunAsync(string rule, CancellationToken cancellationToken = default)
    {
        if (!rules.TryGetRuntime(rule, out var runtime)) return null;
        if (!runtime.Gate.TryEnter()) return null;
        try
        {
            Interlocked.Exchange(ref runtime.CheckAgain, 0); // this check sees whatever was asked for up to now
            if (states.Get(rule) is { Status: RuleStatus.Paused }) return null;
            // Linked only to a token that can add something to Sentinel's stop (a source and its registrations a check).
            using var linked = cancellationToken.CanBeCanceled && cancellationToken != stopping ? CancellationTokenSource.CreateLinkedTokenSource(stopping, cancellationToken) : null;
            var token = linked?.Token ?? stopping;
            var logger = _ruleLoggers.GetOrAdd(rule, static (r, f) => f.CreateLogger("Sentinel.Rule." + r), loggerFactory);
            var stateVersion = runtime.State.Version;
            var check = Redacted(await ProbeRunner.RunAsync(runtime, time, logger, token));
            Record(runtime.Definition, check, runtime.State.Version != stateVersion ? runtime.State.Snapshot() : null);
            if (runtime.Run.Count > 0) await RunAfterCheckAsync(runtime, check, logger, token);
            return check;
        }
        finally
        {
            runtime.Gate.Exit();
            // Asked for while this one ran (a ping that arrived after the probe read its state): checked now, not
            // at the next period (which may be an hour away).
            if (Volatile.Read(ref runtime.CheckAgain) == 1 && !stopping.IsCancellationRequested) Request(rule);
        }
    }

    /// <summary>
    /// A check asked for outside the schedule (a ping, a supervised exit, a dependency): run soon, not awaited. One
    /// asked for while a check runs is not dropped: it runs when that one ends.
    /// </summary>
    public void Request(string rule) => _ = Task.Run(async () =>
    {
        if (rules.TryGetRuntime(rule, out var runtime)) Interlocked.Exchange(ref runtime.CheckAgain, 1);
        try { await RunAsync(rule, stopping); }
        catch (OperationCanceledException) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    });

    // A rule's `run:` actions, after each check, in order, isolated: a failure is logged and the rule goes on.
    private async Task RunAfterCheckAsync(RuleRuntime runtime, CheckRecord check, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var (action, def) in runtime.Run.Zip(runtime.Definition.Run))
        {
            var context = new ActionContext
            {
                RuleName = runtime.Definition.Name, Event = "run", Message = check.Description ?? "", TimeProvider = time, Logger = logger,
                LastResult = new ProbeResult(check.Status, check.Description, null, check.Data),
            };
            try
            {
                using var cap = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cap.CancelAfter(TimeSpan.FromMinutes(10));
                await action.ExecuteAsync(context, cap.Token);
                if (context.Output.Lines.Count > 0) LogRunAction(logger, runtime.Definition.Name, def.Type.Name, string.Join("; ", context.Output.Lines));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { throw; }
            catch (Exception ex) { LogRunActionFailed(logger, runtime.Definition.Name, def.Type.Name, ex.Message); }
        }
    }

    private void Record(RuleDefinition def, CheckRecord check, IReadOnlyDictionary<string, string>? probeState)
    {
        var (next, transition) = states.Update(def.Name, static (current, a) =>
        {
            var (judged, t) = RuleStateMachine.Apply(current, a.check, a.def.FailureThreshold, a.def.SuccessThreshold);
            return (a.probeState is null ? judged : judged with { ProbeState = a.probeState }, t);
        }, (def, check, probeState), since: check.At);
        if (transition is not null) Publish(transition);
        observers.Check(new CheckObservation(def, check, next, transition));
    }

    /// <summary>
    /// A supervised service's exit is a failed check of its rule, whether or not the restart wins the race with the
    /// check the exit asks for: in the history (and so on the page), the failure counters and the metrics. It does not
    /// move the rule's thresholds: a crash healed at once stays silent unless alert-on: [exited] asks to be told.
    /// </summary>
    public void RecordExit(RemediationEvent exit)
    {
        var check = new CheckRecord(ProbeStatus.Unhealthy, "exited: " + exit.Message, exit.When, TimeSpan.Zero);
        var (next, known) = states.Update(exit.Rule, current => (current with { Checks = current.Checks + 1, Failures = current.Failures + 1 }, true), onlyIfKnown: true);
        if (!known) return;
        if (rules.TryGetRuntime(exit.Rule, out var runtime))
            observers.Check(new CheckObservation(runtime.Definition, check, next, null, CountsOnly: true));
    }

    /// <summary>A rule's transition (a check's, a pause's): its observers, the log, the event bus, and a state write soon.</summary>
    public void Publish(RuleTransition t)
    {
        observers.Transition(t);
        var description = t.Check?.Description ?? "";
        if (t.To is RuleStatus.Down or RuleStatus.Failing) LogTransitionBad(_logger, t.Rule, t.From, t.To, description);
        else LogTransition(_logger, t.Rule, t.From, t.To, description);
        events.Publish(t);
        states.FlushSoon();
    }

    // The one choke point for what plugins say: a probe's description and data, an action's message and output are
    // cleared of every configured secret before anything keeps or shows them (state, history, status.json, the API,
    // logs, alerts), so a probe that echoes an Authorization header or a token leaks it nowhere.
    private CheckRecord Redacted(CheckRecord check)
    {
        var r = redactor();
        if (r.IsEmpty) return check;
        var description = check.Description is { } d ? r.Apply(d) : null;
        var data = r.Apply(check.Data);
        // A check that mentions no secret (nearly all) is kept as it is: no copy on the hot path.
        return ReferenceEquals(description, check.Description) && ReferenceEquals(data, check.Data) ? check : check with { Description = description, Data = data };
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Rule {Rule}: {From} -> {To}: {Description}")]
    private static partial void LogTransition(ILogger logger, string rule, RuleStatus from, RuleStatus to, string description);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Rule {Rule}: {From} -> {To}: {Description}")]
    private static partial void LogTransitionBad(ILogger logger, string rule, RuleStatus from, RuleStatus to, string description);

    [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "Running rule {Rule} failed")]
    internal static partial void LogRunFailed(ILogger logger, string rule, Exception ex);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Rule {Rule}: {Action}: {Output}")]
    private static partial void LogRunAction(ILogger logger, string rule, string action, string output);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Rule {Rule}: {Action} failed: {Error}")]
    private static partial void LogRunActionFailed(ILogger logger, string rule, string action, string error);
}
