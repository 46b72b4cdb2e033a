using Sentinel.Engine.Rules;
using Sentinel.Engine.State;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.State;

/// <summary>
/// Two nodes' stores over one real PostgreSQL database: a rule's records move to the node that takes the rule over,
/// the old owner's late writes change nothing, a message is claimed by its owner only, and numbers never collide.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClusterStoreTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly DateTimeOffset At = new(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);
    private PostgresStateStore _a = null!;
    private PostgresStateStore _b = null!;
    private string _databaseConnection = "";

    public async Task InitializeAsync()
    {
        _databaseConnection = await postgres.Server.CreateDatabaseAsync();
        _a = await PostgresStateStore.OpenAsync(_databaseConnection, "a", default);
        _b = await PostgresStateStore.OpenAsync(_databaseConnection, "b", default);
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    private static (RuleState State, Incident Incident, OutboxMessage Message) Outage(long id)
    {
        var state = new RuleState("api", RuleStatus.Down, At, 3, 0, 10, 3);
        var incident = new Incident { Id = id, Rule = "api", OpenedAt = At, Description = "GET / → 503" };
        var message = new OutboxMessage
        {
            Id = id + 1, IncidentId = id, Rule = "api", Channel = "ops-mail", CreatedAt = At, DueAt = At,
            Item = new NotificationItem("api", "down", "down", At, "GET / → 503", id),
        };
        return (state, incident, message);
    }

    [Fact]
    public async Task ANodeTakingARuleOver_GetsItsState_IncidentAndMessages_AndTheOldOwnersLateWritesChangeNothing()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);
        (await _b.LoadNotificationsAsync(default)).Open.Should().BeEmpty("another node's incidents are its own to remind of and resolve");

        var adopted = await _b.AdoptAsync(["api"], default);

        adopted.States["api"].Status.Should().Be(RuleStatus.Down);
        adopted.Open.Should().ContainSingle().Which.Id.Should().Be(incident.Id);
        adopted.Pending.Should().ContainSingle().Which.Id.Should().Be(message.Id);
        // The old owner wakes up and writes what it still believes: healthy, closed, sent.
        incident.ClosedAt = At.AddMinutes(1);
        message.Status = OutboxStatus.Sent;
        await _a.CommitAsync(state with { Status = RuleStatus.Healthy }, [incident], [message], default);
        await _a.SaveAsync([state with { Status = RuleStatus.Healthy }], [], default);
        await _a.SaveAsync([], ["api"], default);

        (await _b.LoadAsync(default))["api"].Status.Should().Be(RuleStatus.Down, "the owner's state counts, and only the owner removes it");
        var b = await _b.LoadNotificationsAsync(default);
        b.Open.Should().ContainSingle().Which.ClosedAt.Should().BeNull();
        b.Pending.Should().ContainSingle().Which.Status.Should().Be(OutboxStatus.Pending);
        (await _a.LoadNotificationsAsync(default)).Open.Should().BeEmpty();
    }

    [Fact]
    public async Task ANodeTakingOverARuleItOwnsAlready_TakesNothing_AndWhatItHoldsStands()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);

        // Its slot fired late twice in a row (a gap of intervals): taken over again by the node that runs it.
        var again = await _a.AdoptAsync(["api"], default);

        again.Kept.Should().Equal(["api"]);
        again.States.Should().BeEmpty("nothing to read back: a state just written would be read beside an incident still being written");
        again.Open.Should().BeEmpty();
        again.Pending.Should().BeEmpty();
        var taken = await _b.AdoptAsync(["api"], default);
        taken.Kept.Should().BeEmpty();
        taken.States.Keys.Should().Equal(["api"]);
        taken.Open.Should().ContainSingle().Which.Id.Should().Be(incident.Id);
    }

    [Fact]
    public async Task AnIncidentTheOldOwnerOpensAfterTheTakeOver_IsNotWritten_AndItsMessageIsLost()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        (await _a.CommitAsync(state with { Status = RuleStatus.Failing }, [], [], default)).Should().BeEmpty("a owns the rule");
        await _b.AdoptAsync(["api"], default);

        // a's check was under way as b took the rule over; it ends down, and a opens an incident of its own.
        var taken = await _a.CommitAsync(state, [incident], [message], default);

        taken.Should().Equal(["api"], "the rule is b's now: what a decided of it is not written");
        (await _b.LoadNotificationsAsync(default)).Open.Should().BeEmpty("only b opens api's incident now: one DOWN for the cluster");
        message.SendingSince = At.AddSeconds(5);
        (await _a.ClaimAsync([message], default)).Lost.Should().Equal([message.Id], "a message that was never written is not a's to send");
    }

    [Fact]
    public async Task AMessageALiveOwnerIsSending_StaysItsToFinish_AndIsTakenOnceItsNodeIsGone()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);
        message.SendingSince = DateTimeOffset.UtcNow; // a send that began minutes ago is taken for stuck
        (await _a.ClaimAsync([message], default)).Claimed.Should().Equal([message.Id], "a is sending it");

        var busy = await _b.AdoptAsync(["api"], default, live: ["a"]);

        busy.Busy.Should().Equal(["api"], "a, alive, is sending the rule's message: it finishes, and records on the incident that it told it");
        (busy.States.Count, busy.Open.Count, busy.Pending.Count).Should().Be((0, 0, 0));
        (await _b.LoadNotificationsAsync(default)).Open.Should().BeEmpty("nothing of the rule is b's yet");
        // a dies before its send is marked: b takes the rule, and the message is b's to send (again: at least once).
        var adopted = await _b.AdoptAsync(["api"], default, live: []);
        adopted.Busy.Should().BeEmpty();
        adopted.Open.Should().ContainSingle();
        adopted.Pending.Should().ContainSingle().Which.Id.Should().Be(message.Id);
    }

    [Fact]
    public async Task AMessageOfARuleThisNodeRuns_ThatADeadNodeStillHeld_IsTakenAsAnOrphan()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);
        await _b.AdoptAsync(["api"], default, live: ["a"]);
        // A message a wrote after b took the rule (its owner column still a).
        var late = new OutboxMessage { Id = message.Id + 2, IncidentId = incident.Id, Rule = "api", Channel = "ops-sms", CreatedAt = At, DueAt = At, Item = message.Item };
        await using (var connection = new Npgsql.NpgsqlConnection(_databaseConnection))
        {
            await connection.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("INSERT INTO sentinel_outbox (id, incident_id, body, status, owner, rule) VALUES ($1, $2, $3::jsonb, 'pending', 'a', 'api')", connection);
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = late.Id });
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = incident.Id });
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = System.Text.Json.JsonSerializer.Serialize(late, SentinelJson.Options) });
            await cmd.ExecuteNonQueryAsync();
        }

        var orphans = await _b.TakeOrphansAsync(["a"], default);

        orphans.Should().ContainSingle("a is alive but not sending it: b runs the rule, so b sends it").Which.Id.Should().Be(late.Id);
        (await _b.TakeOrphansAsync([], default)).Should().BeEmpty("taken once");
    }

    [Fact]
    public async Task AMessageTheOldOwnerStillHoldsButIsNotSending_IsTakenWithTheRule()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);

        var adopted = await _b.AdoptAsync(["api"], default, live: ["a"]);

        adopted.Pending.Should().ContainSingle("a is alive but not sending it: the rule's owner sends it").Which.Id.Should().Be(message.Id);
        message.SendingSince = At.AddSeconds(5);
        (await _a.ClaimAsync([message], default)).Lost.Should().Equal([message.Id]);
    }

    [Fact]
    public async Task AMessageIsClaimedByItsOwnerOnly_AndTheOldOwnerIsToldItIsLost()
    {
        var (state, incident, message) = Outage(_a.ReserveIds());
        await _a.CommitAsync(state, [incident], [message], default);
        await _b.AdoptAsync(["api"], default);
        message.SendingSince = At.AddSeconds(5);

        var byA = await _a.ClaimAsync([message], default);
        var byB = await _b.ClaimAsync([message], default);

        byA.Claimed.Should().BeEmpty();
        byA.Lost.Should().Equal(message.Id);
        byB.Claimed.Should().Equal(message.Id);
        byB.Lost.Should().BeEmpty();
        (await _b.LoadNotificationsAsync(default)).Pending.Single().SendingSince.Should().Be(At.AddSeconds(5), "the claim is written with the send's start");
    }

    [Fact]
    public async Task NumbersTakenByNodesAtOnce_NeverCollide()
    {
        var blocks = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => (i % 2 == 0 ? _a : _b).ReserveIds())));

        var numbers = blocks.SelectMany(start => Enumerable.Range(0, ClusterIds.IdBlock).Select(k => start + k)).ToList();
        numbers.Should().OnlyHaveUniqueItems();
        numbers.Should().OnlyContain(n => n > 0);
    }

    [Fact]
    public async Task WhileTheDatabaseIsGone_NodesStillGetNumbersNoOtherNodeIsGiven()
    {
        // An outage while the database is away must still be numbered (and told): the numbers come from elsewhere then.
        var fromSequence = _a.ReserveIds();
        await using (var admin = new Npgsql.NpgsqlConnection(postgres.Server.AdminConnectionString))
        {
            await admin.OpenAsync();
            var name = new Npgsql.NpgsqlConnectionStringBuilder(_databaseConnection).Database;
            await using var drop = new Npgsql.NpgsqlCommand($"DROP DATABASE \"{name}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }

        var blocks = Enumerable.Range(0, 6).Select(i => (i % 2 == 0 ? _a : _b).ReserveIds()).ToList();

        blocks.SelectMany(start => Enumerable.Range(0, ClusterIds.IdBlock).Select(k => start + k)).Should().OnlyHaveUniqueItems();
        blocks.Should().OnlyContain(b => b > fromSequence + ClusterIds.IdBlock, "far above the sequence's numbers, which come back with the database");
    }

    [Fact]
    public async Task ACheckIn_SaysTheNodeLives_AndReadsEveryNode_AndTheStatesOtherNodesWroteSince()
    {
        var started = DateTimeOffset.UtcNow;
        await _a.SaveAsync([new RuleState("api", RuleStatus.Down, At, 3, 0, 10, 3)], [], default);
        await _b.SaveAsync([new RuleState("db", RuleStatus.Healthy, At, 0, 1, 5, 0)], [], default);

        var before = await _a.CheckInAsync(null, null, default);
        before.Members.Should().BeEmpty("a node that only reads (still loading its rules) does not say it is alive");
        before.Now.Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), "the database's time, also while no node is in the table");
        before.States.Select(s => s.State.Rule).Should().Equal(["db"]);
        var first = await _a.CheckInAsync(new NodeCheckIn("1.0", started, TimeSpan.FromSeconds(2), "digest-a", ["cluster-every-10s-0"]), null, default);
        await _b.CheckInAsync(new NodeCheckIn("1.1", started, TimeSpan.FromSeconds(3), "digest-b", []), null, default);
        var second = await _a.CheckInAsync(new NodeCheckIn("1.0", started, TimeSpan.FromSeconds(2), "digest-a", ["cluster-every-10s-0"])
            { Api = "http://db1:5100", Host = "db1" }, null, default);

        first.States.Select(s => (s.State.Rule, s.Node)).Should().Equal([("db", "b")], "another node's states, not this node's own");
        second.Members.Select(m => m.Node).Should().Equal(["a", "b"]);
        var a = second.Members[0];
        (a.Version, a.CheckinInterval, a.Rules, a.LeftAt).Should().Be(("1.0", TimeSpan.FromSeconds(2), "digest-a", (DateTimeOffset?)null));
        a.Slots.Should().Equal(["cluster-every-10s-0"]);
        (a.Api, a.Host).Should().Be(("http://db1:5100", "db1"), "where the others send a command about its rules");
        (second.Members[1].Api, second.Members[1].Host).Should().Be(((string?)null, (string?)null), "b serves no API");
        a.LastSeen.Should().BeOnOrBefore(second.Now).And.BeOnOrAfter(first.Now, "the check-in's time is the database's");
        (await _a.CheckInAsync(new NodeCheckIn("1.0", started, TimeSpan.FromSeconds(2), "digest-a", []), second.Now, default)).States
            .Should().BeEmpty("nothing was written since");

        await _b.LeaveAsync(default);
        var after = await _a.CheckInAsync(new NodeCheckIn("1.0", started, TimeSpan.FromSeconds(2), "digest-a", []), null, default);
        after.Members.Single(m => m.Node == "b").LeftAt.Should().NotBeNull("b stopped on purpose");
        (await _b.CheckInAsync(new NodeCheckIn("1.1", started, TimeSpan.FromSeconds(3), "digest-b", []), null, default)).Members
            .Single(m => m.Node == "b").LeftAt.Should().BeNull("a node that starts again is back");
    }

    [Fact]
    public async Task NodesStartedTogether_AgreeOnOneApiToken_TheFirstOneProposed()
    {
        var tokens = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => (i % 2 == 0 ? _a : _b).SharedApiTokenAsync($"token-{i}", default))));

        tokens.Distinct().Should().ContainSingle("every node accepts the token a command forwarded by another carries");
        tokens[0].Should().MatchRegex("^token-[0-9]$");
        (await _b.SharedApiTokenAsync("a-later-one", default)).Should().Be(tokens[0], "a node that starts later takes the cluster's");
    }

    [Fact]
    public async Task APingEitherNodeHears_IsApplied_AndTheOtherReadsItAtItsCheckIn()
    {
        var before = (await _a.CheckInAsync(null, null, default)).Now;
        await Task.WhenAll(Enumerable.Range(0, 30).Select(i => Task.Run(() => (i % 2 == 0 ? _a : _b).RecordPingAsync("nightly", r => r.After("log", null, "", At), default))));
        await _b.RecordPingAsync("nightly", r => r.After("fail", null, "exit 1", At.AddMinutes(1)), default);

        var read = await _a.CheckInAsync(null, null, default, states: false, pingsSince: before);

        read.Pings.Keys.Should().Equal("nightly");
        read.Pings["nightly"].Pings.Should().Be(31, "each node's pings took the row in turn");
        read.Pings["nightly"].LastFail.Should().Be(At.AddMinutes(1));
        (await _a.CheckInAsync(null, null, default, states: false, pingsSince: read.Now)).Pings.Should().BeEmpty("nothing was written since");
    }

    [Fact]
    public async Task NodesWritingAndTakingOverTheSameRulesAtOnce_InAnyOrder_NeverDeadlock()
    {
        // Seen in the cluster benchmark: a node back after a kill took its slots' rules over while the others wrote
        // their states, each locking the same rows in its own order, and PostgreSQL aborted one as a deadlock.
        var rules = Enumerable.Range(0, 300).Select(i => $"rule-{i:x3}-{(i * 7919) % 300}").ToArray();
        await _a.SaveAsync([.. rules.Select(r => new RuleState(r, RuleStatus.Healthy, At, 0, 1, 1, 0))], [], default);
        var c = await PostgresStateStore.OpenAsync(_databaseConnection, "c", default);
        try
        {
            async Task Work(PostgresStateStore store, int seed)
            {
                var random = new Random(seed);
                for (var i = 0; i < 40; i++)
                {
                    var order = rules.OrderBy(_ => random.Next()).ToArray();
                    if (i % 2 == 0) await store.SaveAsync([.. order.Select(r => new RuleState(r, RuleStatus.Healthy, At, 0, 1, i, 0))], [], default);
                    else await store.AdoptAsync(order.Take(150).ToArray(), default);
                }
            }
            await Task.WhenAll(Task.Run(() => Work(_a, 1)), Task.Run(() => Work(_b, 2)), Task.Run(() => Work(c, 3)));
        }
        finally { await c.DisposeAsync(); }
        (await _a.LoadAsync(default)).Keys.Should().BeEquivalentTo(rules, "every rule's state is there, owned by one node");
    }
}
