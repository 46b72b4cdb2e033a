using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Events;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Scheduling;
using Sentinel.Engine.State;

namespace Sentinel.Engine;

// Checks: a scheduled or requested run of a rule, judged, recorded and published; its `run:` actions after it.
internal sealed partial class SentinelEngine
{
    /// <summary>Observes how late each scheduled check started (for the load harness and, later, metrics).</summary>
    internal Action<string, TimeSpan>? ScheduledStartObserver { get; set; }

    private async Task RunScheduledAsync(string rule, DateTimeOffset scheduledAt, CancellationToken cancellationToken)
    {
        if (_hung) return;
        try
        {
            // The scheduler fires triggers due together in one batch, some a few milliseconds early. Where that is
            // more than 0.5% of the rule's period (sub-second rules), wait for the exact time.
            var early = scheduledAt - _time.GetUtcNow();
            if (early > TimeSpan.Zero && early <= QuartzRuleScheduler.FireAheadWindow
                && _runtimes.TryGetValue(rule, out var runtime) && runtime.Definition.Every is { } every && early * 200 > every)
                await Task.Delay(early, _time, cancellationToken);
            ScheduledStartObserver?.Invoke(rule, _time.GetUtcNow() - scheduledAt);
            await RunRuleAsync(rule, cancellationToken);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested || cancellationToken.IsCancellationRequested) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    }

    /// <summary>Runs one check of a rule now, unless one is already running; returns the check, or null if skipped.</summary>
    public async Task<CheckRecord?> RunRuleAsync(string rule, CancellationToken cancellationToken = default)
    {
        if (!_runtimes.TryGetValue(rule, out var runtime)) return null;
        if (!await runtime.Gate.WaitAsync(0, CancellationToken.None)) return null;
        try
        {
            if (GetState(rule) is { Status: RuleStatus.Paused }) return null;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, cancellationToken);
            var logger = _ruleLoggers.GetOrAdd(rule, r => _loggerFactory.CreateLogger("Sentinel.Rule." + r));
            var stateVersion = runtime.State.Version;
            var check = Redacted(await ProbeRunner.RunAsync(runtime, _time, logger, linked.Token));
            Record(runtime.Definition, check, runtime.State.Version != stateVersion ? runtime.State.Snapshot() : null);
            await RunAfterCheckAsync(runtime, check, logger, linked.Token);
            return check;
        }
        finally { runtime.Gate.Release(); }
    }

    // A rule's `run:` actions, after each check, in order, isolated: a failure is logged and the rule goes on.
    private async Task RunAfterCheckAsync(RuleRuntime runtime, CheckRecord check, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var (action, def) in runtime.Run.Zip(runtime.Definition.Run))
        {
            var context = new ActionContext
            {
                RuleName = runtime.Definition.Name, Event = "run", Message = check.Description ?? "", TimeProvider = _time, Logger = logger,
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

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Rule {Rule}: {Action}: {Output}")]
    private static partial void LogRunAction(ILogger logger, string rule, string action, string output);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Rule {Rule}: {Action} failed: {Error}")]
    private static partial void LogRunActionFailed(ILogger logger, string rule, string action, string error);

    private void Record(RuleDefinition def, CheckRecord check, IReadOnlyDictionary<string, string>? probeState)
    {
        var (next, transition) = _states.Update(def.Name, current =>
        {
            var (judged, t) = RuleStateMachine.Apply(current, check, def.FailureThreshold, def.SuccessThreshold);
            return (probeState is null ? judged : judged with { ProbeState = probeState }, t);
        }, since: check.At);
        if (transition is not null) Publish(transition);
        Observers.Check(new Runtime.CheckObservation(def, check, next, transition));
    }

    // The observers of every check, in the order they run: each is isolated (one that throws is logged, the others run).
    private void AddObservers()
    {
        Observers.Add(new("metrics", o => Metrics.OnCheck(o.Rule.Name, o.Check), t => Metrics.OnTransition(t.Rule, t.To)));
        Observers.Add(new("history", o => History?.Record(o.Rule.Name, o.Check, o.State.Status)));
        Observers.Add(new("remediation",
            o => { if (!o.CountsOnly && _remediators.TryGetValue(o.Rule.Name, out var remediator)) remediator.OnCheck(o.State, o.Check); },
            t =>
            {
                if (t.To != RuleStatus.Healthy) return;
                foreach (var r in _remediators.Values)
                    if (r.Definition.DependsOn.Contains(t.Rule)) r.OnDependencyRecovered();
            }));
        Observers.Add(new("pings", o =>
        {
            if (o.CountsOnly || !_rulePings.TryGetValue(o.Rule.Name, out var ping) || o.State.Status != RuleStatus.Healthy) return;
            if (o.Transition is null && o.Check.At.UtcTicks - Interlocked.Read(ref ping.LastSuccessTicks) < o.Rule.PingEvery.Ticks) return;
            Interlocked.Exchange(ref ping.LastSuccessTicks, o.Check.At.UtcTicks);
            ping.Sender.Send("success", o.Check.Description ?? "ok");
        }, t =>
        {
            if (t.To == RuleStatus.Down && _rulePings.TryGetValue(t.Rule, out var ping)) ping.Sender.Send("fail", t.Check?.Description ?? "down");
        }));
    }

    // A supervised service's exit is a failed check of its rule, whether or not the restart wins the race with the
    // check the exit asks for: in the history (and so on the page), the failure counters and the metrics. It does not
    // move the rule's thresholds: a crash healed at once stays silent unless alert-on: [exited] asks to be told.
    private void RecordExit(RemediationEvent exit)
    {
        var check = new CheckRecord(ProbeStatus.Unhealthy, "exited: " + exit.Message, exit.When, TimeSpan.Zero);
        var (next, known) = _states.Update(exit.Rule, current => (current with { Checks = current.Checks + 1, Failures = current.Failures + 1 }, true), onlyIfKnown: true);
        if (!known) return;
        if (_runtimes.TryGetValue(exit.Rule, out var runtime))
            Observers.Check(new Runtime.CheckObservation(runtime.Definition, check, next, null, CountsOnly: true));
    }

    private void Publish(RuleTransition t)
    {
        Observers.Transition(t);
        var description = t.Check?.Description ?? "";
        if (t.To is RuleStatus.Down or RuleStatus.Failing) LogTransitionBad(_logger, t.Rule, t.From, t.To, description);
        else LogTransition(_logger, t.Rule, t.From, t.To, description);
        Events.Publish(t);
        _persister?.FlushSoon();
    }
}
