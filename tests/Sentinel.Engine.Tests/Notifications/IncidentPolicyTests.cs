using System.Text.Json;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Notifications;

/// <summary>
/// The incident policy on its own: a pure function, so thousands of random histories run in a second. Two rules ("db",
/// and "api" which depends on it), three channels; a history is outages, recoveries, acknowledgements, time passing and
/// deliveries in any order. What must hold for every one: nothing decided changes what it was given; every outage of a
/// rule nothing held back is told to each of its channels (DOWN while it lasts, or BRIEFLY DOWN after); a channel told
/// of an incident gets exactly one RESOLVED for it, and no channel hears of an incident's end twice.
/// </summary>
public sealed class IncidentPolicyTests
{
    private static readonly Lazy<SentinelConfig> Config = new(() =>
    {
        var dir = new TempDir();
        var path = dir.File("sentinel.yaml", """
            notifications: { group-wait: 30s }
            channels:
              - { name: mail, type: test-channel, with: { key: p-mail } }
              - { name: sms, type: test-channel, with: { key: p-sms } }
              - { name: pager, type: test-channel, with: { key: p-pager } }
            rules:
              - name: db
                every: 10s
                probe: { type: scripted, with: { key: p-db } }
                notify: [ { channel: mail }, { channel: pager, after: 5m } ]
              - name: api
                every: 10s
                depends-on: [db]
                probe: { type: scripted, with: { key: p-api } }
                notify: [ { channel: mail }, { channel: sms } ]
            """);
        using var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new TestProbesPlugin()]);
        catalog.LoadAll();
        var result = new ConfigLoader().Load(path, catalog);
        result.Errors.Should().BeEmpty();
        return result.Config!;
    });

    private enum Step { DbDown, DbUp, ApiDown, ApiUp, Ack, Deliver, Wait }

    private static readonly Gen<(Step Step, int Seconds)[]> Histories =
        Gen.Select(Gen.Enum<Step>(), Gen.Int[0, 400]).Array[1, 40];

    [Fact]
    public void EveryHistory_TellsEachOutageAndItsEndOnce_AndDecidingChangesNothingItIsGiven()
    {
        Histories.Sample(history =>
        {
            var run = new Run(Config.Value);
            foreach (var (step, seconds) in history) run.Do(step, seconds);
            run.Do(Step.DbUp, 0);
            run.Do(Step.ApiUp, 0);
            for (var i = 0; i < 3; i++) run.Do(Step.Deliver, 400); // past every group-wait: what is due goes
            run.Check();
        }, iter: 3000, threads: 1);
    }

    /// <summary>One history: the engine's side (states, transitions) and the channels' side (deliveries) around the real book and policy.</summary>
    private sealed class Run(SentinelConfig config)
    {
        private readonly IncidentBook _book = new();
        private readonly Dictionary<string, RuleState> _states = new(StringComparer.Ordinal);
        private readonly List<OutboxMessage> _delivered = [];
        private readonly List<Incident> _outages = [];
        private DateTimeOffset _now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        private IncidentWorld World => new(config, r => _states.GetValueOrDefault(r));

        public void Do(Step step, int seconds)
        {
            _now += TimeSpan.FromSeconds(seconds);
            switch (step)
            {
                case Step.DbDown: Move("db", RuleStatus.Down); break;
                case Step.DbUp: Move("db", RuleStatus.Healthy); break;
                case Step.ApiDown: Move("api", RuleStatus.Down); break;
                case Step.ApiUp: Move("api", RuleStatus.Healthy); break;
                case Step.Ack when _book.Open.Values.FirstOrDefault() is { } open: Apply(() => IncidentPolicy.Ack(_book, open.Id, _now)); break;
                case Step.Deliver: Deliver(); break;
            }
            foreach (var incident in _book.Open.Values.ToList()) Apply(() => IncidentPolicy.Remind(World, incident, _now));
        }

        private void Move(string rule, RuleStatus to)
        {
            var from = _states.GetValueOrDefault(rule)?.Status ?? RuleStatus.Pending;
            if (from == to) return;
            var state = RuleState.New(rule, _now) with { Status = to };
            _states[rule] = state;
            var check = new CheckRecord(to == RuleStatus.Down ? ProbeStatus.Unhealthy : ProbeStatus.Healthy, to == RuleStatus.Down ? "refused" : "ok", _now, TimeSpan.Zero);
            if (Apply(() => IncidentPolicy.On(_book, World, new RuleTransition(rule, from, to, _now, check, state))) is { } opened) _outages.Add(opened);
        }

        // What the dispatcher does with what is due: the channel accepts it, and an outage it tells marks the channel told.
        private void Deliver()
        {
            var due = _book.Pending.Where(m => m.Status == OutboxStatus.Pending && m.DueAt <= _now).OrderBy(m => m.Id).ToList();
            var extra = new List<OutboxMessage>();
            foreach (var m in due)
            {
                m.Status = OutboxStatus.Sent;
                _delivered.Add(m);
                if (!NotificationKind.TellsOutage(m.Item.Kind) || m.IncidentId is not { } id) continue;
                if (_book.Open.Values.FirstOrDefault(i => i.Id == id) is { } incident)
                {
                    if (!incident.Notified.Contains(m.Channel)) incident.Notified.Add(m.Channel);
                    incident.LastNotifiedAt = _now;
                }
                else if (IncidentPolicy.ResolvedAfterTheFact(_book, World, m, _now) is { } resolved) extra.Add(resolved);
            }
            _book.Number(extra);
            _book.Settle([.. due, .. extra]);
        }

        // The policy decides on a book it must not change; the book then applies the decision.
        private Incident? Apply(Func<IncidentDecision> decide)
        {
            var before = Snapshot();
            var decision = decide();
            Snapshot().Should().Be(before, "deciding must not change what the policy is given");
            if (_book.Apply(decision) is var (_, messages)) _book.Settle(messages);
            return decision.Opened;
        }

        private string Snapshot() => JsonSerializer.Serialize(new { Open = _book.Open.Values.OrderBy(i => i.Id), Pending = _book.Pending, _book.Crashes, _book.LastIncident, _book.LastMessage }, SentinelJson.Options);

        public void Check()
        {
            _book.Open.Should().BeEmpty("every rule recovered at the end");
            foreach (var incident in _outages)
            {
                var def = config.Rules.Single(r => r.Name == incident.Rule);
                var about = _delivered.Where(m => m.IncidentId == incident.Id).ToList();
                foreach (var (channel, immediate) in def.Notify.Select(n => (n.Channel, n.After == TimeSpan.Zero)).Distinct())
                {
                    var told = about.Where(m => m.Channel == channel).ToList();
                    var outage = told.Count(m => NotificationKind.TellsOutage(m.Item.Kind));
                    var ends = told.Count(m => m.Item.Kind is NotificationKind.Resolved or NotificationKind.BrieflyDown);
                    ends.Should().BeLessThanOrEqualTo(1, $"incident #{incident.Id} of {incident.Rule} ends once on {channel}: {Describe(told)}");
                    if (outage > 0) told.Count(m => m.Item.Kind == NotificationKind.Resolved).Should().Be(1, $"{channel} was told of #{incident.Id}: it is told it ended: {Describe(told)}");
                    // Held back for its whole outage (its parent was down until it recovered) is the one outage not told.
                    if (immediate && incident.SuppressedBy is null)
                        (outage + ends).Should().BePositive($"the outage #{incident.Id} of {incident.Rule} ({incident.OpenedAt:HH:mm:ss}–{incident.ClosedAt:HH:mm:ss}) is told on {channel}");
                }
            }
        }

        private static string Describe(IEnumerable<OutboxMessage> messages) => string.Join(", ", messages.Select(m => $"{m.Item.Kind}#{m.Id}"));
    }
}
