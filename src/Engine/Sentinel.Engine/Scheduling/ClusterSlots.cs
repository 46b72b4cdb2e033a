using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Quartz;

namespace Sentinel.Engine.Scheduling;

/// <summary>
/// The slots of a cluster's rules (<see cref="IntervalShards"/>) in Quartz's clustered job store on the cluster's
/// PostgreSQL: one durable job and trigger per slot, named alike on every node, so that every node that schedules a
/// rule finds (or makes) the same slot, and Quartz fires each slot on one node per fire. A fire is one row lock, not
/// one per rule: 10,000 rules at 10 s are 100 triggers firing 10 times a second for the whole cluster.
/// A slot is pinned to the node that first fires it (<see cref="PreferredNode.Auto"/>), so a rule's checks stay on
/// one node, which holds its state; when the node stops checking in, Quartz releases its pins and the slots move to
/// the nodes still alive. <see cref="SpreadAsync"/> then spreads the slots over the live nodes by name.
/// </summary>
internal sealed class ClusterSlots : IAsyncDisposable
{
    private const string SlotGroup = "cluster-slots";

    /// <summary>All nodes share this scheduler name (Quartz's cluster is the set of schedulers of one name on one database).</summary>
    public const string SchedulerName = "sentinel";

    private readonly ServiceProvider _services;
    private readonly IScheduler _scheduler;
    private readonly ILogger _logger;

    /// <summary>
    /// Slots acquired (and fired) under one <c>QRTZ_LOCKS</c> row lock at most: slot jobs return at once, so a few
    /// threads fire many slots (settable for the benchmark that measures what batching buys).
    /// </summary>
    internal static int MaxBatchSize { get; set; } = 10;

    /// <summary>How far ahead of its time a slot is acquired with the one before it.</summary>
    internal static TimeSpan FireAheadWindow { get; set; } = QuartzRuleScheduler.FireAheadWindow;

    private readonly string _connectionString;

    private ClusterSlots(ServiceProvider services, IScheduler scheduler, ILogger logger, string connectionString)
    {
        _connectionString = connectionString;
        _services = services;
        _scheduler = scheduler;
        _logger = logger;
    }

    /// <summary>
    /// Joins the cluster: Quartz's tables are created if the database has none, and this node checks in every
    /// <paramref name="checkinInterval"/> (without <paramref name="firing"/>: from <see cref="FireAsync"/> on; slots can be
    /// made before). <paramref name="fire"/> is called with a slot's key and due time when the
    /// slot fires on this node; it must return quickly (the slot's checks run on their own).
    /// </summary>
    public static async Task<ClusterSlots> StartAsync(string connectionString, string node, TimeSpan checkinInterval, Action<string, DateTimeOffset> fire,
        ILoggerFactory loggerFactory, CancellationToken cancellationToken, bool firing = true)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddQuartz(SchedulerName, q =>
        {
            q.ConfigureScheduler(o =>
            {
                o.InstanceId = node;
                o.MaxBatchSize = MaxBatchSize;
                o.BatchTriggerAcquisitionFireAheadTimeWindow = FireAheadWindow;
                // Nothing tells this node that another pinned a slot to it (spreading, a node back): a node with
                // nothing to fire looks again after a second, not after Quartz's default 30 s (measured: a node that
                // joined fired nothing for up to half a minute; docs/performance.md).
                o.IdleWaitTime = TimeSpan.FromSeconds(1);
            });
            q.UseJobFactory(new SlotJobFactory(new SlotJob(fire)));
            q.UseDefaultThreadPool(o => o.MaxConcurrency = 10);
            q.UsePersistentStore(s =>
            {
                s.UsePostgres(connectionString);
                s.UseSystemTextJsonSerializer();
                s.UseClustering(c =>
                {
                    c.CheckinInterval = checkinInterval;
                    c.CheckinMisfireThreshold = checkinInterval;
                });
                s.ProvisionSchema();
                // Batch acquisition across nodes is only safe inside the database lock.
                s.ConfigureStore(o => o.AcquireTriggersWithinLock = true);
            });
        });
        var provider = services.BuildServiceProvider();
        try
        {
            var scheduler = provider.GetRequiredKeyedService<IScheduler>(SchedulerName);
            if (firing) await scheduler.Start(cancellationToken);
            return new ClusterSlots(provider, scheduler, loggerFactory.CreateLogger<ClusterSlots>(), connectionString) { _firing = firing ? 1 : 0 };
        }
        catch
        {
            await provider.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts firing (and checking in): once this node knows which rules each of its slots starts.</summary>
    public async Task FireAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _firing, 1) == 0) await _scheduler.Start(cancellationToken);
    }

    private int _firing;

    /// <summary>Makes the slot's job and trigger unless another node (or an earlier run) already made them.</summary>
    public Task EnsureAsync(string key, TimeSpan every, TimeSpan phase, CancellationToken cancellationToken)
        => EnsureAsync(key, DateTimeOffset.UtcNow.Add(phase),
            SimpleScheduleBuilder.Create().WithInterval(every).RepeatForever().WithMisfireInstruction(SimpleTriggerMisfireInstruction.NextWithRemainingCount), cancellationToken);

    /// <summary>A cron slot (one rule's), made unless it is already there.</summary>
    public Task EnsureCronAsync(string key, string cron, CancellationToken cancellationToken)
        => EnsureAsync(key, DateTimeOffset.UtcNow, CronScheduleBuilder.Create(cron).WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing), cancellationToken);

    private async Task EnsureAsync(string key, DateTimeOffset startAt, IScheduleBuilder schedule, CancellationToken cancellationToken)
    {
        var jobKey = new JobKey(key, SlotGroup);
        if (await _scheduler.Exists(jobKey, cancellationToken)) return;
        // One fire of a slot at a time, cluster-wide: Quartz keeps its trigger BLOCKED while a fire runs, so the next fire
        // is not acquired (by another node, from a slot pinned to a dead one) before this fire's pin is written
        // (SlotJob.KeepAsync). Without it, two live nodes fired a moved slot in turn, each taking its rules over, and an
        // outage was told twice (measured: the 3-node test, one in one run). A node killed in the middle of a fire leaves
        // its slot BLOCKED until Quartz cleans the dead node's records up (two check-ins later: it defers that once).
        var job = JobBuilder.Create<SlotJob>().WithIdentity(jobKey).UsingJobData("slot", key).DisallowConcurrentExecution().StoreDurably().Build();
        var trigger = TriggerBuilder.Create().WithIdentity(key, SlotGroup).ForJob(jobKey).StartAt(startAt).WithSchedule(schedule)
            .WithPreferredNode(PreferredNode.Auto).Build();
        try { await _scheduler.ScheduleJob(job, trigger, default, cancellationToken); }
        catch (ObjectAlreadyExistsException) { } // another node made it between the check and now: the same slot
    }

    /// <summary>A slot no node fired for a while after it was due: when, and the state its trigger was left in.</summary>
    public sealed record Stall(string Slot, DateTimeOffset Due, TriggerState State, DateTimeOffset Next);

    /// <summary>
    /// Makes again the slots of <paramref name="overdueAfter"/> (a slot: how long after its due time it is taken for
    /// stalled; null: not this node's to look at) that no node fired for that long, whatever held them (a trigger left
    /// in a state no node fires it from): each gets its own schedule and pin back, from its next due time on (a missed
    /// <c>every:</c> fire is not made up for; a missed cron fire is fired at once). One query for all the slots finds
    /// them. Returns the stalls, for the log.
    /// </summary>
    public async Task<IReadOnlyList<Stall>> RepairAsync(Func<string, TimeSpan?> overdueAfter, TimeSpan shortest, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var late = new List<(string Key, DateTimeOffset Due)>();
        await using (var connection = new Npgsql.NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = new Npgsql.NpgsqlCommand(
                "SELECT trigger_name, next_fire_time FROM qrtz_triggers WHERE sched_name = @s AND trigger_group = @g AND next_fire_time < @cutoff", connection);
            command.Parameters.AddWithValue("s", SchedulerName);
            command.Parameters.AddWithValue("g", SlotGroup);
            command.Parameters.AddWithValue("cutoff", (now - shortest).UtcTicks);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) late.Add((reader.GetString(0), new DateTimeOffset(reader.GetInt64(1), TimeSpan.Zero)));
        }
        var stalls = new List<Stall>();
        foreach (var (key, due) in late)
        {
            if (overdueAfter(key) is not { } overdue || now - due < overdue) continue;
            var triggerKey = new TriggerKey(key, SlotGroup);
            if (await _scheduler.GetTrigger(triggerKey, cancellationToken) is not { } trigger || trigger.NextFireTimeUtc != due) continue; // it fired meanwhile
            var state = await _scheduler.GetTriggerState(triggerKey, cancellationToken);
            var next = trigger is ISimpleTrigger simple && simple.RepeatInterval > TimeSpan.Zero
                ? due + simple.RepeatInterval * Math.Ceiling((now - due) / simple.RepeatInterval)
                : due;
            await _scheduler.RescheduleJob(triggerKey, trigger.GetTriggerBuilder().StartAt(next).Build(), cancellationToken);
            stalls.Add(new Stall(key, due, state, next));
        }
        return stalls;
    }

    /// <summary>The slots in the cluster's store (made by any node).</summary>
    public async Task<IReadOnlySet<string>> KeysAsync(CancellationToken cancellationToken)
        => (await _scheduler.GetJobKeys(GroupMatcher<JobKey>.GroupEquals(SlotGroup), cancellationToken)).Select(k => k.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Spreads the slots over the live nodes that fire by them (<paramref name="nodesFor"/> a slot: the nodes whose
    /// rules need it, none: the slot is left as it is): each slot is pinned by name to the node a rendezvous hash of
    /// the slot and those nodes picks, which every node computes alike, and which moves only the
    /// slots of a node that joins or leaves. A named pin outlives its node's death (Quartz fires the slot on another
    /// node meanwhile) until the next spreading names a live node. Returns how many slots moved.
    /// </summary>
    public async Task<int> SpreadAsync(Func<string, IReadOnlyList<string>> nodesFor, CancellationToken cancellationToken)
    {
        var moved = 0;
        foreach (var key in await KeysAsync(cancellationToken))
        {
            var nodes = nodesFor(key);
            if (nodes.Count == 0) continue;
            var triggerKey = new TriggerKey(key, SlotGroup);
            if (await _scheduler.GetTrigger(triggerKey, cancellationToken) is not { } trigger) continue;
            var node = NodeFor(key, nodes);
            if (trigger.PreferredNode.Node == node && !trigger.PreferredNode.IsAutomatic) continue;
            if (await _scheduler.UpdateTriggerDetails(triggerKey, new TriggerDetailsUpdate().WithPreferredNode(PreferredNode.For(node)), cancellationToken)) moved++;
        }
        return moved;
    }

    /// <summary>The node a slot goes to: the highest hash of (slot, node).</summary>
    internal static string NodeFor(string slot, IReadOnlyList<string> nodes)
        => nodes.MaxBy(n => Mix(IntervalShards.StableHash(slot + "\n" + n)))!;

    // FNV-1a mixes its last characters poorly: a finalizer (MurmurHash3's) spreads them over the whole word.
    private static uint Mix(uint h)
    {
        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        h *= 0xc2b2ae35;
        return h ^ (h >> 16);
    }

    /// <summary>Removes a slot (its job and trigger) no node needs any more.</summary>
    public async Task RemoveAsync(string key, CancellationToken cancellationToken) => await _scheduler.DeleteJob(new JobKey(key, SlotGroup), cancellationToken);

    /// <summary>
    /// What a <c>kill -9</c> leaves in the cluster's store (tests): this node stops firing and checking in at once, and a
    /// fire still running stays recorded as running.
    /// </summary>
    internal async Task HaltAsync() => await _scheduler.Shutdown(waitForJobsToComplete: false);

    public async ValueTask DisposeAsync()
    {
        try { await _scheduler.Shutdown(waitForJobsToComplete: true, CancellationToken.None); }
        catch (Exception ex) when (ex is SchedulerException or System.Data.Common.DbException)
        {
            _logger.LogWarning("The cluster scheduler did not stop cleanly: {Reason}", ex.Message);
        }
        await _services.DisposeAsync();
    }

    private sealed class SlotJobFactory(SlotJob job) : Quartz.Extensibility.IJobFactory
    {
        public ValueTask<Quartz.Extensibility.JobScope> CreateJob(Quartz.Extensibility.TriggerFiredBundle bundle, IScheduler scheduler, CancellationToken cancellationToken)
            => ValueTask.FromResult(new Quartz.Extensibility.JobScope(job, null!));

        public ValueTask ReturnJob(Quartz.Extensibility.JobScope scope, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class SlotJob(Action<string, DateTimeOffset> fire) : IJob
    {
        public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
        {
            fire(context.MergedJobDataMap.GetString("slot")!, context.ScheduledFireTimeUtc ?? context.FireTimeUtc);
            // A slot pinned by name to another node fires here only while Quartz takes that node for dead, and would
            // fire on any live node, fire by fire: each fire would move its rules (and take them over) again. This
            // node keeps it until the next spreading, pinned before this fire ends (the slot's next fire is acquired
            // only then).
            if (context.Trigger.PreferredNode is { IsAutomatic: false, Node: { } pinned } && pinned != context.Scheduler.SchedulerInstanceId)
                await KeepAsync(context.Scheduler, context.Trigger.Key);
        }

        private static async Task KeepAsync(IScheduler scheduler, TriggerKey key)
        {
            try { await scheduler.UpdateTriggerDetails(key, new TriggerDetailsUpdate().WithPreferredNode(PreferredNode.For(scheduler.SchedulerInstanceId))); }
            catch (Exception ex) when (ex is SchedulerException or System.Data.Common.DbException or OperationCanceledException) { } // the next fire tries again
        }
    }
}
