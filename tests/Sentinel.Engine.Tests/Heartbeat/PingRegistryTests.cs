using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.Tests.Heartbeat;

public sealed class PingRegistryTests
{
    // A partitioned rate limiter wakes every 100 ms while it lives: an engine that is never pinged must not pay for one
    // (two were 20 wake-ups a second, a third of the idle engine's CPU).
    [Fact]
    public void TheRateLimiter_IsMadeAtTheFirstPing_AndThenLimits()
    {
        using var pings = new PingRegistry();
        pings.Register("job");
        pings.IsKnown("job").Should().BeTrue();
        pings.IsLimiting.Should().BeFalse("nothing has been pinged yet");

        var allowed = Enumerable.Range(0, 100).Count(_ => pings.TryAcquire("job"));

        pings.IsLimiting.Should().BeTrue();
        allowed.Should().Be(20, "one check may burst 20 pings, then 5 a second");
    }

    private sealed class Store(bool fails) : IPingStore
    {
        public Dictionary<string, PingRecord> Kept { get; } = [];
        public Task<IReadOnlyDictionary<string, PingRecord>> LoadPingsAsync(CancellationToken cancellationToken)
            => Task.FromResult<IReadOnlyDictionary<string, PingRecord>>(new Dictionary<string, PingRecord> { ["job"] = new(Pings: 7) });
        public Task<PingRecord> RecordPingAsync(string key, Func<PingRecord, PingRecord> change, CancellationToken cancellationToken)
            => fails ? throw new IOException("disk full") : Task.FromResult(Kept[key] = change(Kept.GetValueOrDefault(key) ?? new PingRecord()));
    }

    [Fact]
    public async Task OnOneBox_APingTheStoreCannotTake_IsStillHeard_AndTheFailureTold()
    {
        using var pings = new PingRegistry();
        pings.Register("job");
        var told = new List<Exception?>();
        await pings.UseStoreAsync(new Store(fails: true), shared: false, told.Add, default);

        var outcome = await pings.RecordAsync("job", "fail", null, "boom");

        outcome.Should().Be(PingOutcome.RecordedHereOnly);
        pings.Get("job")!.LastFail.Should().NotBeNull("this engine alone judges it: its memory is enough until a restart");
        pings.Get("job")!.Pings.Should().Be(8, "the stored record was loaded first");
        told.Should().ContainSingle().Which.Should().BeOfType<IOException>();
    }

    [Fact]
    public async Task InACluster_APingTheDatabaseCannotTake_IsRefused_AndNotHeardHereAlone()
    {
        using var pings = new PingRegistry();
        pings.Register("job");
        var raised = 0;
        pings.Pinged += _ => raised++;
        await pings.UseStoreAsync(new Store(fails: true), shared: true, null, default);

        var outcome = await pings.RecordAsync("job", "success", null, "");

        outcome.Should().Be(PingOutcome.NotRecorded, "the node that runs the rule would never see it: the pinger must try again");
        pings.Get("job")!.LastSuccess.Should().BeNull();
        raised.Should().Be(0);
    }

    [Fact]
    public async Task APingAnotherNodeHeard_IsMerged_AndRaisedOnlyWhenItChangesTheJudgement()
    {
        using var pings = new PingRegistry();
        pings.Register("job");
        var raised = new List<string>();
        pings.Pinged += raised.Add;
        var store = new Store(fails: false);
        await pings.UseStoreAsync(store, shared: true, null, default);
        var at = DateTimeOffset.UnixEpoch;

        (await pings.RecordAsync("job", "success", null, "")).Should().Be(PingOutcome.Recorded);
        store.Kept["job"].LastSuccess.Should().NotBeNull("written to the store before it is answered");
        raised.Clear();
        pings.Merge([new("job", pings.Get("job")!)]);
        raised.Should().BeEmpty("read back unchanged");
        pings.Merge([new("job", pings.Get("job")! with { LastBody = "a log line", Pings = 9 })]);
        raised.Should().BeEmpty("a /log changes no judgement");
        pings.Merge([new("job", pings.Get("job")! with { LastFail = at }), new("removed-rule", new PingRecord(LastFail: at))]);
        raised.Should().Equal("job");
        pings.Get("job")!.LastFail.Should().Be(at);
        pings.Get("removed-rule").Should().BeNull("a key no rule has is not known");
    }
}
