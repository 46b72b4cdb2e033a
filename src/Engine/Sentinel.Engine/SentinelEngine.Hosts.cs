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

// What the remediators and the notification center ask of the engine (IRemediationHost, INotificationHost), and redaction.
internal sealed partial class SentinelEngine
{
    RuleState? IRemediationHost.GetState(string rule) => GetState(rule);

    RemediationState IRemediationHost.UpdateRemediation(string rule, Func<RemediationState, RemediationState> update)
    {
        var changed = false;
        var (_, result) = _states.Update(rule, current =>
        {
            var result = update(current.Remediation ?? new RemediationState());
            // Healthy checks of a healthy rule change nothing: no write, no flush.
            if (Equals(result, current.Remediation)) return (current, result);
            changed = true;
            return (current with { Remediation = result }, result);
        });
        if (changed) _persister?.FlushSoon();
        return result;
    }

    // The one choke point for what plugins say: a probe's description and data, an action's message and output are
    // cleared of every configured secret before anything keeps or shows them (state, history, status.json, the API,
    // logs, alerts), so a probe that echoes an Authorization header or a token leaks it nowhere.
    private CheckRecord Redacted(CheckRecord check)
    {
        var r = Redactor;
        if (r.IsEmpty) return check;
        var description = check.Description is { } d ? r.Apply(d) : null;
        var data = r.Apply(check.Data);
        // A check that mentions no secret (nearly all) is kept as it is: no copy on the hot path.
        return ReferenceEquals(description, check.Description) && ReferenceEquals(data, check.Data) ? check : check with { Description = description, Data = data };
    }

    private EngineEvent Redacted(EngineEvent e) => e is RemediationEvent x && !Redactor.IsEmpty
        ? x with { Message = Redactor.Apply(x.Message), Output = x.Output.Select(Redactor.Apply).ToList() }
        : e;

    void IRemediationHost.Publish(EngineEvent e)
    {
        e = Redacted(e);
        if (e is RemediationEvent { Kind: RemediationEventKind.Exited } exit) RecordExit(exit);
        if (e is RemediationEvent re) Metrics.OnRemediation(re.Rule, re.Name);
        if (e is RemediationEvent r && _rulePings.TryGetValue(r.Rule, out var ping))
            ping.Sender.Send("log", $"{r.Name} (attempt {r.Attempt}): {r.Message}" + (r.Output.Count > 0 ? "\n" + string.Join("\n", r.Output) : ""));
        Events.Publish(e);
    }

    void INotificationHost.Delivered(string channel, string result, int messages, string detail)
    {
        Metrics.OnNotification(channel, result, messages);
        Activity.Add(_time.GetUtcNow(), "notification-" + result, null, $"{channel}: {detail}");
    }

    void INotificationHost.NotificationsChanged()
    {
        _persister?.MarkStatusChanged();
        _persister?.FlushSoon();
    }

    string? IRemediationHost.FirstDown(IReadOnlyList<string> rules) => rules.FirstOrDefault(r => GetState(r) is { Status: RuleStatus.Down });

    void IRemediationHost.RequestCheck(string rule) => _ = Task.Run(async () =>
    {
        try { await RunRuleAsync(rule, _stopping.Token); }
        catch (OperationCanceledException) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    });

    // A ping that changes a heartbeat rule's judgement (a /fail, an exit status, a success after one) is checked when
    // it arrives, so "the job failed" is told now, not up to a period later.
    private void OnPinged(string key)
    {
        if (_stopping.IsCancellationRequested) return;
        foreach (var runtime in _runtimes.Values)
            if (runtime.Definition.ProbeOptions is BuiltIn.HeartbeatProbeOptions { Key: var k } && k == key)
                ((IRemediationHost)this).RequestCheck(runtime.Definition.Name);
    }

    // A replaced runtime is disposed once its current run (if any) has finished.
    private static async Task RetireAsync(RuleRuntime runtime)
    {
        await runtime.Gate.WaitAsync(TimeSpan.FromMinutes(1));
        await runtime.DisposeAsync();
    }
}
