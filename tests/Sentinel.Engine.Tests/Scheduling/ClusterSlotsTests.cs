using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Scheduling;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Scheduling;

/// <summary>
/// The cluster's slots on a real PostgreSQL through Quartz's clustered job store, real time: nodes that schedule the
/// same slots make one trigger each, each fire runs on one node, a slot stays on its node, and it moves when its node
/// leaves, also in the middle of a fire, and a slot stuck in the store is found and made again. (Failover after a real kill -9 is the Host tests'.)
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClusterSlotsTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    private readonly ConcurrentQueue<(string Node, string Slot, DateTimeOffset Due)> _fires = new();
    private readonly List<ClusterSlots> _nodes = [];
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.Server.CreateDatabaseAsync();

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
    }

    private async Task<ClusterSlots> JoinAsync(string node, Action<string>? firing = null)
    {
        var slots = await ClusterSlots.StartAsync(_database, node, TimeSpan.FromSeconds(1), (slot, due) =>
            {
                firing?.Invoke(slot);
                _fires.Enqueue((node, slot, due));
            },
            NullLoggerFactory.Instance, default);
        _nodes.Add(slots);
        return slots;
    }

    private static readonly string[] Keys = [.. Enumerable.Range(0, 6).Select(i => IntervalShards.Key(Every, i))];

    private static async Task EnsureAllAsync(ClusterSlots node)
    {
        for (var i = 0; i < Keys.Length; i++) await node.EnsureAsync(Keys[i], Every, TimeSpan.FromMilliseconds(100 * i), default);
    }

    [Fact]
    public async Task ThreeNodesSchedulingTheSameSlots_FireEachOnce_OnOneNode()
    {
        var a = await JoinAsync("node-a");
        var b = await JoinAsync("node-b");
        var c = await JoinAsync("node-c");
        await Task.WhenAll(EnsureAllAsync(a), EnsureAllAsync(b), EnsureAllAsync(c));

        (await SlotJobsAsync()).Should().BeEquivalentTo(Keys, "every node made the same slots: one job each");
        await Eventually.Until(() => Keys.All(k => _fires.Count(f => f.Slot == k) >= 4), ok => ok, what: "every slot fired 4 times");

        var fires = _fires.ToArray();
        fires.GroupBy(f => (f.Slot, f.Due)).Should().OnlyContain(g => g.Count() == 1, "a fire runs on one node, never on two");
        foreach (var slot in fires.GroupBy(f => f.Slot))
        {
            slot.Select(f => f.Node).Distinct().Should().ContainSingle($"slot {slot.Key} stays on the node that first fired it");
            var due = slot.Select(f => f.Due).Order().ToList();
            due.Zip(due.Skip(1), (x, y) => y - x).Should().OnlyContain(gap => gap == Every, "no fire is skipped or repeated");
        }
        (await c.KeysAsync(default)).Should().BeEquivalentTo(Keys, "every node sees the slots any node made");
        await b.RemoveAsync(Keys[0], default);
        (await a.KeysAsync(default)).Should().BeEquivalentTo(Keys.Skip(1), "a slot one node removes is gone for all");
    }

    [Fact]
    public async Task SpreadSlots_FireOnTheNodeTheirHashNames_AndSpreadingAgainMovesNothing()
    {
        var a = await JoinAsync("node-a");
        var b = await JoinAsync("node-b");
        var c = await JoinAsync("node-c");
        await Task.WhenAll(EnsureAllAsync(a), EnsureAllAsync(b), EnsureAllAsync(c));
        string[] nodes = ["node-a", "node-b", "node-c"];
        // The first slot is needed by node-a's rules only (the others' configurations have none in it).
        IReadOnlyList<string> NodesFor(string slot) => slot == Keys[0] ? ["node-a"] : nodes;
        var expected = Keys.ToDictionary(k => k, k => ClusterSlots.NodeFor(k, NodesFor(k)));
        expected[Keys[0]].Should().Be("node-a");
        expected.Values.Distinct().Count().Should().BeGreaterThan(1, "six slots over three nodes do not all hash to one");

        var moved = await b.SpreadAsync(NodesFor, default);
        var spread = DateTimeOffset.UtcNow;

        moved.Should().Be(Keys.Length, "every slot gets its pin by name");
        (await a.SpreadAsync(NodesFor, default)).Should().Be(0, "another node spreading over the same nodes computes the same pins");
        // A fire acquired before the pins changed may still land where it was: from the next round on, none does.
        await Eventually.Until(() => Keys.All(k => _fires.Count(f => f.Slot == k && f.Due > spread.AddSeconds(1)) >= 3), ok => ok, what: "every slot fired 3 times after spreading");
        _fires.Where(f => f.Due > spread.AddSeconds(1)).Should().OnlyContain(f => f.Node == expected[f.Slot], "a spread slot fires on its node");
        var slots = Enumerable.Range(0, 200).Select(i => $"slot-{i}").ToList();
        string[] withoutC = ["node-a", "node-b"];
        slots.Where(k => ClusterSlots.NodeFor(k, nodes) != "node-c").Should().OnlyContain(k => ClusterSlots.NodeFor(k, withoutC) == ClusterSlots.NodeFor(k, nodes),
            "a node leaving moves only its own slots");
        slots.GroupBy(k => ClusterSlots.NodeFor(k, nodes)).Should().OnlyContain(g => g.Count() > 40, "200 slots over three nodes: each gets its share");
    }

    private async Task<List<string>> SlotJobsAsync()
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT job_name FROM qrtz_job_details WHERE sched_name = 'sentinel'", connection);
        var names = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) names.Add(r.GetString(0));
        return names;
    }

    [Fact]
    public async Task WhenTheNodeHoldingTheSlotsLeaves_TheOthersFireThem()
    {
        var a = await JoinAsync("node-a");
        await EnsureAllAsync(a);
        await Eventually.Until(() => Keys.All(k => _fires.Any(f => f.Slot == k && f.Node == "node-a")), ok => ok, what: "node-a fires every slot");
        var b = await JoinAsync("node-b");
        await EnsureAllAsync(b);

        await a.DisposeAsync();
        _nodes.Remove(a);
        var left = DateTimeOffset.UtcNow;

        await Eventually.Until(() => Keys.All(k => _fires.Any(f => f.Slot == k && f.Node == "node-b" && f.Due > left)), ok => ok,
            what: "node-b fires every slot after node-a left");
        _fires.Where(f => f.Node == "node-a").Should().OnlyContain(f => f.Due <= left.AddSeconds(1), "a node that left fires nothing");
    }

    [Fact]
    public async Task WhenTheNodeHoldingTheSlotsDiesInTheMiddleOfAFire_TheOthersFireEverySlotWithinTheFailoverBound()
    {
        // node-b's fire of the first slot, once armed, never returns: the node dies in the middle of it, which leaves
        // that fire recorded as running in the cluster's store (what a kill -9 between a fire and its end leaves).
        using var stuck = new ManualResetEventSlim();
        using var armed = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var b = await JoinAsync("node-b", slot =>
        {
            if (slot != Keys[0] || !armed.IsSet) return;
            entered.TrySetResult();
            stuck.Wait(TimeSpan.FromSeconds(60));
        });
        await EnsureAllAsync(b);
        await Eventually.Until(() => Keys.All(k => _fires.Any(f => f.Slot == k && f.Node == "node-b")), ok => ok, what: "node-b fires every slot");
        var a = await JoinAsync("node-a");
        await EnsureAllAsync(a);
        armed.Set();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var died = DateTimeOffset.UtcNow;
        await b.HaltAsync();
        try
        {
            // Two check-ins (Quartz's failure detection) and an interval, with room for a loaded machine; the slot it
            // died firing (BLOCKED until Quartz cleans the dead node's records up, which it defers once) too.
            await Eventually.Until(() => Keys.All(k => _fires.Any(f => f.Slot == k && f.Node == "node-a" && f.Due > died)), ok => ok,
                timeout: TimeSpan.FromSeconds(2 * 1 + 1 + 4), what: "node-a fires every slot after node-b died, the one it died firing too");
            var resumed = Keys.ToDictionary(k => k, k => _fires.Where(f => f.Slot == k && f.Node == "node-a" && f.Due > died).Min(f => f.Due));
            resumed[Keys[0]].Should().BeOnOrBefore(Keys.Skip(1).Max(k => resumed[k]) + 2 * Every + TimeSpan.FromSeconds(2),
                "the slot it died firing resumes a check-in after the others at most");
        }
        finally { stuck.Set(); }
    }

    [Fact]
    public async Task ASlotStuckInTheStore_IsFoundOverdue_AndMadeAgain_OnItsGrid_WithoutABurst()
    {
        var a = await JoinAsync("node-a");
        await EnsureAllAsync(a);
        await Eventually.Until(() => Keys.All(k => _fires.Any(f => f.Slot == k)), ok => ok, what: "every slot fires");
        // Whatever left it so (a fire that never ended, a state no node fires a trigger from), nobody fires it any more.
        // Only from WAITING: a trigger being fired that moment would be written back by its fire.
        await Eventually.Until(async () => await SqlAsync($"UPDATE qrtz_triggers SET trigger_state = 'BLOCKED' WHERE trigger_name = '{Keys[0]}' AND trigger_state = 'WAITING'") == 1,
            what: "the slot's trigger is stuck");
        var overdue = TimeSpan.FromSeconds(2);
        IReadOnlyList<ClusterSlots.Stall> stalls = [];
        await Eventually.Until(async () => stalls = await a.RepairAsync(_ => overdue, overdue, DateTimeOffset.UtcNow, default), found => found.Count > 0, what: "the stuck slot is found");
        var repaired = DateTimeOffset.UtcNow;

        var stall = stalls.Should().ContainSingle("only the stuck slot is overdue").Subject;
        stall.Slot.Should().Be(Keys[0]);
        stall.State.Should().Be(Quartz.TriggerState.Blocked);
        (repaired - stall.Due).Should().BeGreaterThanOrEqualTo(overdue, "a slot is repaired once overdue, not before");
        _fires.Where(f => f.Slot == Keys[0] && f.Due > stall.Due).Should().BeEmpty("the slot was really stuck: no fire after the one it was due for");
        ((stall.Next - stall.Due).Ticks % Every.Ticks).Should().Be(0, "it stays on its grid");
        await Eventually.Until(() => _fires.Count(f => f.Slot == Keys[0] && f.Due >= stall.Next) >= 3, ok => ok, what: "the repaired slot fires again");
        var due = _fires.Where(f => f.Slot == Keys[0] && f.Due >= stall.Next).Select(f => f.Due).Order().ToList();
        due[0].Should().Be(stall.Next);
        due.Zip(due.Skip(1), (x, y) => y - x).Should().OnlyContain(gap => gap == Every, "no burst of the fires it missed");
        (await a.RepairAsync(_ => overdue, overdue, DateTimeOffset.UtcNow, default)).Should().BeEmpty("nothing is overdue any more");
    }

    private async Task<int> SqlAsync(string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand(sql, connection);
        return await cmd.ExecuteNonQueryAsync();
    }

    private async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand(sql, connection);
        return await cmd.ExecuteScalarAsync();
    }

    [Fact]
    public async Task ATakeOverThatDoesNotEnd_SkipsTheCheck_SaysSoOnce_AndTheNextFireTakesTheRuleOverAgain()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var log = new ListLogger();
        var hung = new TaskCompletionSource<IReadOnlySet<string>>();
        var takeOvers = 0;
        var checks = new ConcurrentQueue<DateTimeOffset>();
        // The first take-over never ends (whatever held it); the next ones do.
        await using var a = new QuartzRuleScheduler(new ListLoggerFactory(log), 10, new ClusterSettings(_database, "node-a", TimeSpan.FromSeconds(1)),
            (_, _) => Interlocked.Increment(ref takeOvers) == 1 ? hung.Task : Task.FromResult<IReadOnlySet<string>>(new HashSet<string>()), time);
        await a.StartAsync((_, at, _) => { checks.Enqueue(at); return Task.CompletedTask; }, () => { }, default);
        await a.ScheduleAsync(new RuleDefinition
        {
            Name = "api", Every = Every, Timeout = TimeSpan.FromSeconds(10), FailureThreshold = 1, SuccessThreshold = 1, Fingerprint = "api", ClusterWide = true,
            Probe = new PluginTypeRegistration("noop", PluginKind.Probe, typeof(object), typeof(object), null, "test", 1), ProbeOptions = new object(),
        }, default);
        await a.FireSharedAsync(default);
        await Eventually.Until(() => Volatile.Read(ref takeOvers) == 1, what: "the slot fired and the rule is being taken over");

        // Until the limit, the rule's fires wait for that take-over (its member is busy with it).
        time.Advance(QuartzRuleScheduler.AdoptionLimit);
        await Eventually.Until(() => !checks.IsEmpty, what: "the rule is checked once a later fire took it over");

        Volatile.Read(ref takeOvers).Should().BeGreaterThanOrEqualTo(2, "the next fire took it over again");
        log.Lines.Where(l => l.StartsWith("Warning: Rule api: taking it over from the cluster did not end within", StringComparison.Ordinal)).Should().ContainSingle();
    }

    [Fact]
    public async Task ASlotNoLiveNodeNeeds_IsRemovedAfterThreeCheckIns_AndANodesOwnSlotRemovedIsMadeAgain()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var settings = new ClusterSettings(_database, "node-a", TimeSpan.FromSeconds(1));
        await using var a = new QuartzRuleScheduler(NullLoggerFactory.Instance, 10, settings, (_, _) => Task.FromResult<IReadOnlySet<string>>(new HashSet<string>()), time);
        await using var b = new QuartzRuleScheduler(NullLoggerFactory.Instance, 10, settings with { Node = "node-b" }, (_, _) => Task.FromResult<IReadOnlySet<string>>(new HashSet<string>()), time);
        await a.StartAsync((_, _, _) => Task.CompletedTask, () => { }, default);
        await b.StartAsync((_, _, _) => Task.CompletedTask, () => { }, default);
        var rule = new RuleDefinition
        {
            Name = "api", Every = TimeSpan.FromMinutes(1), Timeout = TimeSpan.FromSeconds(10), FailureThreshold = 1, SuccessThreshold = 1, Fingerprint = "api", ClusterWide = true,
            Probe = new PluginTypeRegistration("noop", PluginKind.Probe, typeof(object), typeof(object), null, "test", 1), ProbeOptions = new object(),
        };
        await a.ScheduleAsync(rule, default);
        var slot = a.SharedSlots.Should().ContainSingle().Subject;
        b.SharedSlots.Should().BeEmpty();

        // b (whose configuration has no such rule) sees the slot unneeded unless a, alive, says it needs it.
        await b.ReconcileSharedAsync(new HashSet<string> { slot }, default);
        time.Advance(TimeSpan.FromSeconds(10));
        await b.ReconcileSharedAsync(new HashSet<string> { slot }, default);
        (await SlotJobsAsync()).Should().Contain(slot, "a live node needs it");
        await b.ReconcileSharedAsync(new HashSet<string>(), default);
        time.Advance(TimeSpan.FromSeconds(2.9));
        await b.ReconcileSharedAsync(new HashSet<string>(), default);
        (await SlotJobsAsync()).Should().Contain(slot, "a slot just made is published at its node's next check-in: it is not removed before three");
        time.Advance(TimeSpan.FromSeconds(0.2));
        await b.ReconcileSharedAsync(new HashSet<string>(), default);
        (await SlotJobsAsync()).Should().NotContain(slot, "no live node has needed it for three check-ins");

        // a was taken for down meanwhile; at its next check-in it makes its slot again.
        await a.ReconcileSharedAsync(new HashSet<string>(), default);
        (await SlotJobsAsync()).Should().Contain(slot);

        // No node fired it (the fake clock ran ahead of every node): two check-ins and two intervals past its due time it
        // is taken for stalled, and made again from its next due time on; a check-in before that leaves it as it is.
        var due = (long)(await ScalarAsync($"SELECT next_fire_time FROM qrtz_triggers WHERE trigger_name = '{slot}'"))!;
        time.SetUtcNow(new DateTimeOffset(due, TimeSpan.Zero) + TimeSpan.FromMinutes(2));
        await a.ReconcileSharedAsync(new HashSet<string>(), default);
        (await ScalarAsync($"SELECT next_fire_time FROM qrtz_triggers WHERE trigger_name = '{slot}'")).Should().Be(due, "two minutes late is within two intervals and two check-ins");
        time.Advance(TimeSpan.FromSeconds(2.5));
        await a.ReconcileSharedAsync(new HashSet<string>(), default);
        (await ScalarAsync($"SELECT next_fire_time FROM qrtz_triggers WHERE trigger_name = '{slot}'")).Should().Be(due + TimeSpan.FromMinutes(3).Ticks, "made again on its grid, from its next due time");
    }
}

