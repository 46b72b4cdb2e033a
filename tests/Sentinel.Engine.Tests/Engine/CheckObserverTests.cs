using Sentinel.Engine.Runtime;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>The observers of a check (metrics, history, remediation, pings) are called alike and isolated from each other.</summary>
public sealed class CheckObserverTests
{
    [Fact]
    public void AnObserverThatThrows_IsLogged_AndTheOthersStillRun()
    {
        var logger = new ListLogger();
        var observers = new CheckObservers(logger);
        var seen = new List<string>();
        observers.Add(new("first", o => seen.Add("first " + o.Check.Description)));
        observers.Add(new("broken", _ => throw new InvalidOperationException("boom"), _ => throw new InvalidOperationException("boom too")));
        observers.Add(new("last", o => seen.Add("last " + o.Check.Description), t => seen.Add($"last {t.From}->{t.To}")));
        var at = DateTimeOffset.UnixEpoch;
        var rule = new RuleDefinition { Name = "api", Timeout = TimeSpan.FromSeconds(1), Probe = null!, ProbeOptions = new(), FailureThreshold = 1, SuccessThreshold = 1, Fingerprint = "" };
        var check = new CheckRecord(Sentinel.Abstractions.ProbeStatus.Unhealthy, "refused", at, TimeSpan.Zero);

        observers.Check(new CheckObservation(rule, check, RuleState.New("api", at), null));
        observers.Transition(new RuleTransition("api", RuleStatus.Healthy, RuleStatus.Down, at, check, RuleState.New("api", at)));

        seen.Should().Equal("first refused", "last refused", "last Healthy->Down");
        logger.Lines.Should().Equal(
            "Error: The broken observer failed on a check of api; the others went on",
            "Error: The broken observer failed on a check of api; the others went on");
    }

    [Fact]
    public async Task AThrowingObserverInTheEngine_StopsNeitherTheChecks_NorTheAlerts_NorTheOtherObservers()
    {
        var (mail, probe) = (Guid.NewGuid().ToString("N")[..10], Guid.NewGuid().ToString("N")[..10]);
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            channels:
              - { name: {{mail}}, type: test-channel, with: { key: {{mail}} } }
            rules:
              - name: api
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{probe}} } }
                notify: [{ channel: {{mail}} }]
            """, start: false);
        await h.StartEngineAsync();
        h.Engine.Observers.Add(new("broken", _ => throw new InvalidOperationException("boom"), _ => throw new InvalidOperationException("boom")));
        var after = 0;
        h.Engine.Observers.Add(new("after", _ => Interlocked.Increment(ref after)));

        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(10), what: "the DOWN message");
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Down);
        after.Should().BeGreaterThan(0, "observers after the broken one still see each check");
        h.Engine.History!.Recent("api").Ms.Should().NotBeEmpty("the history observer ran before it");
    }
}
