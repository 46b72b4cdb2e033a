using Sentinel.Engine.Notifications;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine;

// What the remediators and the notification center ask of the engine (IRemediationHost, INotificationHost), and redaction.
internal sealed partial class SentinelEngine
{
    /// <summary>Keeps the running configuration's secrets out of what the API sends and what plugins say.</summary>
    public Api.Redactor Redactor { get; private set; }

    /// <summary>The bearer token the API's changing calls require (set by the host before start).</summary>
    public string? ApiToken
    {
        get => _apiToken;
        set
        {
            _apiToken = value;
            Redactor = Api.Redactor.For(Config, value);
        }
    }
    private string? _apiToken;

    public RuleState? GetState(string rule) => _states.Get(rule);

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
        if (changed) _states.FlushSoon();
        return result;
    }

    // A remediator's message and output are cleared of every configured secret, as a probe's are (CheckPipeline).
    private EngineEvent Redacted(EngineEvent e) => e is RemediationEvent x && !Redactor.IsEmpty
        ? x with { Message = Redactor.Apply(x.Message), Output = x.Output.Select(Redactor.Apply).ToList() }
        : e;

    void IRemediationHost.Publish(EngineEvent e)
    {
        e = Redacted(e);
        if (e is RemediationEvent { Kind: RemediationEventKind.Exited } exit) _checks.RecordExit(exit);
        if (e is RemediationEvent re) Metrics.OnRemediation(re.Rule, re.Name);
        if (e is RemediationEvent r && _rules.Pings.TryGetValue(r.Rule, out var ping))
            ping.Sender.Send("log", $"{r.Name} (attempt {r.Attempt}): {r.Message}" + (r.Output.Count > 0 ? "\n" + string.Join("\n", r.Output) : ""));
        Events.Publish(e);
    }

    void INotificationHost.Delivered(string channel, string result, int messages, string detail)
    {
        Metrics.OnNotification(channel, result, messages);
        Activity.Add(_time.GetUtcNow(), "notification-" + result, null, $"{channel}: {detail}");
    }

    void INotificationHost.NotificationsChanged() => _states.StatusChanged();

    string? IRemediationHost.FirstDown(IReadOnlyList<string> rules) => rules.FirstOrDefault(r => GetState(r) is { Status: RuleStatus.Down });

    void IRemediationHost.RequestCheck(string rule) => _checks.Request(rule);

    // A ping that changes a heartbeat rule's judgement (a /fail, an exit status, a success after one) is checked when
    // it arrives, so "the job failed" is told now, not up to a period later.
    private void OnPinged(string key)
    {
        if (_stopping.IsCancellationRequested) return;
        foreach (var runtime in _rules.Runtimes.Values)
            // In a cluster, the node that runs the rule checks it (it reads the ping at its next check-in): checked
            // here, the rule would be taken over by whichever node a pinger reaches.
            if (runtime.Definition.ProbeOptions is BuiltIn.HeartbeatProbeOptions { Key: var k } && k == key && RunElsewhere(runtime.Definition.Name) is null)
                _checks.Request(runtime.Definition.Name);
    }
}
