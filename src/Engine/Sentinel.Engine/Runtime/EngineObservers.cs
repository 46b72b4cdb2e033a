namespace Sentinel.Engine.Runtime;

/// <summary>The observers every engine has, in the order they run; each is isolated (one that throws is logged, the others run).</summary>
internal static class EngineObservers
{
    public static void AddTo(CheckObservers observers, Metrics.EngineMetrics metrics, History.HistoryRecorder? history, RuleRegistry rules)
    {
        observers.Add(new("metrics", o => metrics.OnCheck(o.Rule.Name, o.Check), t => metrics.OnTransition(t.Rule, t.To)));
        observers.Add(new("history", o => history?.Record(o.Rule.Name, o.Check, o.State.Status)));
        observers.Add(new("remediation",
            o => { if (!o.CountsOnly && rules.Remediators.TryGetValue(o.Rule.Name, out var remediator)) remediator.OnCheck(o.State, o.Check); },
            t =>
            {
                if (t.To != RuleStatus.Healthy) return;
                foreach (var r in rules.Remediators.Values)
                    if (r.Definition.DependsOn.Contains(t.Rule)) r.OnDependencyRecovered();
            }));
        observers.Add(new("pings", o =>
        {
            if (o.CountsOnly || !rules.Pings.TryGetValue(o.Rule.Name, out var ping) || o.State.Status != RuleStatus.Healthy) return;
            if (o.Transition is null && o.Check.At.UtcTicks - Interlocked.Read(ref ping.LastSuccessTicks) < o.Rule.PingEvery.Ticks) return;
            Interlocked.Exchange(ref ping.LastSuccessTicks, o.Check.At.UtcTicks);
            ping.Sender.Send("success", o.Check.Description ?? "ok");
        }, t =>
        {
            if (t.To == RuleStatus.Down && rules.Pings.TryGetValue(t.Rule, out var ping)) ping.Sender.Send("fail", t.Check?.Description ?? "down");
        }));
    }
}
