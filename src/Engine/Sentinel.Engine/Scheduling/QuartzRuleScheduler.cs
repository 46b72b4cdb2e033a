using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Quartz;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Scheduling;

/// <summary>
/// Quartz (in-memory store) fires the rules: <c>every:</c> rules by slot (<see cref="IntervalShards"/>: one simple
/// trigger per interval and slot starts all of its rules), <c>cron:</c> rules one cron trigger each. A rule never runs
/// twice at once (a check still running when its next is due skips that one), and missed fires are skipped, not replayed.
/// In cluster mode (<paramref name="cluster"/>), cluster-wide rules are fired by their slots in the cluster's shared
/// store (<see cref="ClusterSlots"/>: once per interval for the whole cluster), the rules that name this node by the
/// in-memory store as on one box, and the rules of other nodes not at all; before a rule's first check on this node
/// (and again whenever it comes back after another node ran it), <paramref name="adopt"/> takes the rule's records over
/// (and answers the rules it could not take yet: those skip this check).
/// </summary>
internal sealed partial class QuartzRuleScheduler(ILoggerFactory loggerFactory, int maxConcurrency, ClusterSettings? cluster = null,
    Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlySet<string>>>? adopt = null, TimeProvider? time = null) : IRuleScheduler
{
    private const string RuleGroup = "rules";
    private const string EngineGroup = "engine";
    private const string SlotGroup = "slots";

    /// <summary>How early a check may start, so that triggers due together are fired in one round.</summary>
    public static TimeSpan FireAheadWindow { get; internal set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How long stopping waits for running jobs to finish.</summary>
    public static TimeSpan ShutdownTimeout { get; } = TimeSpan.FromSeconds(10);
    private ServiceProvider? _services;
    private IScheduler? _scheduler;
    private ClusterSlots? _clusterSlots;
    // This node's cron rules taken over since they were scheduled here (their first check here takes them over).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _cronAdopted = new(StringComparer.Ordinal);
    private int _stopped;
    private readonly CancellationTokenSource _stopping = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Slot> _slotOf = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _changes = new(1, 1);
    private Func<string, DateTimeOffset, CancellationToken, Task>? _runRule;
    // max-concurrency: checks started by slots wait here for their turn, as Quartz's own jobs wait for a thread.
    private readonly SemaphoreSlim _concurrency = new(Math.Max(maxConcurrency, 10));

    // The rules of one interval and slot, fired together by one trigger (listed once per change of its rules, not at
    // every fire).
    private sealed class Slot(string key, TimeSpan? every, bool shared)
    {
        public string Key { get; } = key;
        /// <summary>A shared slot's first fire after its start (every:), or its expression (cron:): what it is made again with.</summary>
        public TimeSpan Phase { get; init; }
        public string? Cron { get; init; }
        /// <summary>The interval of its rules (null: one cron rule's slot).</summary>
        public TimeSpan? Every { get; } = every;
        /// <summary>Fired by the cluster's store: another node may have run its rules' last checks.</summary>
        public bool Shared { get; } = shared;
        public System.Collections.Concurrent.ConcurrentDictionary<string, Member> Rules { get; } = new(StringComparer.Ordinal);
        public volatile Member[] Members = [];

        public void Rebuild() => Members = [.. Rules.Values];
        /// <summary>When it last fired on this node (a cluster slot: whether it just came here).</summary>
        public DateTimeOffset LastFired;
    }

    // A rule in its slot, and its check while one runs (a rule never runs twice at once).
    private sealed class Member(string rule)
    {
        public string Rule { get; } = rule;
        public volatile Task? Running;
        /// <summary>When its last check on this node was due (null: none since it was scheduled here).</summary>
        public DateTimeOffset? LastRunAt;
        /// <summary>Said once while its fires are skipped: a check still running, or not taken over yet.</summary>
        public bool Told;
    }

    private enum Placement { Here, Cluster, Elsewhere }

    private Placement PlaceOf(RuleDefinition rule)
        => !rule.RunsOn(cluster) ? Placement.Elsewhere : cluster is not null && rule.Node is null && rule.ClusterWide ? Placement.Cluster : Placement.Here;

    public async Task StartAsync(Func<string, DateTimeOffset, CancellationToken, Task> runRule, Action tick, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        _runRule = runRule;
        var ruleJob = new RuleJob((rule, at, ct) => RunCronAsync(runRule, rule, at, ct));
        var tickJob = new TickJob(tick);
        var slotJob = new SlotJob(this);
        // A unique name: several engines (tests, `sentinel check`) may live in one process.
        var name = "sentinel-" + Guid.NewGuid().ToString("N")[..12];
        services.AddQuartz(name, q =>
        {
            q.UseInMemoryStore();
            q.UseJobFactory(new SingletonJobFactory(ruleJob, tickJob, slotJob));
            var concurrency = Math.Max(maxConcurrency, 10);
            q.UseDefaultThreadPool(o => o.MaxConcurrency = concurrency);
            // Acquire the triggers due within the next few milliseconds in one round, so thousands of rules do not
            // cost one scheduler wake-up each; a check may start up to that window early.
            q.ConfigureScheduler(o =>
            {
                o.MaxBatchSize = Math.Min(concurrency, 50);
                o.BatchTriggerAcquisitionFireAheadTimeWindow = FireAheadWindow;
            });
        });
        _services = services.BuildServiceProvider();
        _scheduler = _services.GetRequiredKeyedService<IScheduler>(name);
        var tickDetail = JobBuilder.Create<TickJob>().WithIdentity("tick", EngineGroup).DisallowConcurrentExecution().Build();
        var tickTrigger = TriggerBuilder.Create().WithIdentity("tick", EngineGroup).StartNow()
            .WithSimpleSchedule(s => s.WithInterval(TimeSpan.FromSeconds(1)).RepeatForever()
                .WithMisfireInstruction(SimpleTriggerMisfireInstruction.NextWithRemainingCount))
            .Build();
        await _scheduler.ScheduleJob(tickDetail, tickTrigger, default, cancellationToken);
        await _scheduler.Start(cancellationToken);
        if (cluster is not null)
            // Slots fire here once the rules are scheduled (FireSharedAsync): a fire for a slot this node does not know yet would be lost.
            _clusterSlots = await ClusterSlots.StartAsync(cluster.ConnectionString, cluster.Node, cluster.CheckinInterval, Fire, loggerFactory, cancellationToken, firing: false);
    }

    public async Task ScheduleAsync(RuleDefinition rule, CancellationToken cancellationToken)
    {
        var scheduler = _scheduler ?? throw new InvalidOperationException("the scheduler is not started");
        await _changes.WaitAsync(cancellationToken);
        try
        {
            // A rule rescheduled (changed, resumed) keeps its running check: it is not started beside it.
            var running = _slotOf.TryGetValue(rule.Name, out var was) && was.Rules.TryGetValue(rule.Name, out var member) ? member.Running : null;
            await RemoveAsync(rule.Name, cancellationToken);
            var place = PlaceOf(rule);
            if (rule.Paused || place == Placement.Elsewhere) return;
            if (place == Placement.Cluster)
            {
                await ScheduleSharedAsync(rule, running, cancellationToken);
                return;
            }
            if (rule.Every is { } every)
            {
                var index = IntervalShards.SlotOf(rule.Name, every);
                var key = IntervalShards.Key(every, index);
                if (!_slots.TryGetValue(key, out var slot))
                {
                    slot = new Slot(key, every, shared: false);
                    var job = JobBuilder.Create<SlotJob>().WithIdentity(key, SlotGroup).UsingJobData("slot", key).DisallowConcurrentExecution().Build();
                    var trigger = TriggerBuilder.Create().WithIdentity(key, SlotGroup).ForJob(job)
                        .StartAt(DateTimeOffset.UtcNow.Add(IntervalShards.Phase(index, every)))
                        .WithSimpleSchedule(s => s.WithInterval(every).RepeatForever().WithMisfireInstruction(SimpleTriggerMisfireInstruction.NextWithRemainingCount))
                        .Build();
                    _slots[key] = slot;
                    await scheduler.ScheduleJob(job, trigger, default, cancellationToken);
                }
                slot.Rules[rule.Name] = new Member(rule.Name) { Running = running };
                slot.Rebuild();
                _slotOf[rule.Name] = slot;
                return;
            }
            var ruleKey = new JobKey(rule.Name, RuleGroup);
            var cronJob = JobBuilder.Create<RuleJob>().WithIdentity(ruleKey).UsingJobData("rule", rule.Name).DisallowConcurrentExecution().Build();
            var cron = TriggerBuilder.Create().WithIdentity(rule.Name, RuleGroup).ForJob(ruleKey).StartNow()
                .WithCronSchedule(rule.Cron!, c => c.WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)).Build();
            await scheduler.ScheduleJob(cronJob, cron, default, cancellationToken);
        }
        finally { _changes.Release(); }
    }

    public async Task UnscheduleAsync(string rule, CancellationToken cancellationToken)
    {
        if (_scheduler is null) return;
        await _changes.WaitAsync(cancellationToken);
        try { await RemoveAsync(rule, cancellationToken); }
        finally { _changes.Release(); }
    }

    // A cluster-wide rule in its slot of the cluster's store (made there by the first node that needs it; every node
    // that runs the same rules finds the same slot). A cron rule has a slot of its own, named by its expression.
    private async Task ScheduleSharedAsync(RuleDefinition rule, Task? running, CancellationToken cancellationToken)
    {
        Slot made;
        if (rule.Every is { } every)
        {
            var index = IntervalShards.SlotOf(rule.Name, every);
            made = new Slot("cluster-" + IntervalShards.Key(every, index), every, shared: true) { Phase = IntervalShards.Phase(index, every) };
        }
        else made = new Slot($"cluster-cron-{rule.Name}-{IntervalShards.StableHash(rule.Cron!):x8}", null, shared: true) { Cron = rule.Cron };
        if (!_slots.ContainsKey(made.Key)) await EnsureSharedAsync(made, cancellationToken);
        var slot = _slots.GetOrAdd(made.Key, made);
        slot.Rules[rule.Name] = new Member(rule.Name) { Running = running };
        slot.Rebuild();
        _slotOf[rule.Name] = slot;
    }

    // Out of its slot (a slot left empty loses its trigger; a cluster slot stays, other nodes may use it) or its cron job.
    private async Task RemoveAsync(string rule, CancellationToken cancellationToken)
    {
        _cronAdopted.TryRemove(rule, out _);
        if (_slotOf.TryRemove(rule, out var slot))
        {
            slot.Rules.TryRemove(rule, out _);
            slot.Rebuild();
            if (slot.Rules.IsEmpty && _slots.TryRemove(slot.Key, out _) && !slot.Shared)
                await _scheduler!.DeleteJob(new JobKey(slot.Key, SlotGroup), cancellationToken);
        }
        await _scheduler!.DeleteJob(new JobKey(rule, RuleGroup), cancellationToken);
    }

    // A slot's fire: its rules start at once (one whose last check still runs skips this one). The checks run on their
    // own, so one slow rule delays no other.
    // In cluster mode, rules whose last check here is not the one before this (never run here, or another node ran
    // them since) are taken over first, all of the slot's together.
    private void Fire(string key, DateTimeOffset scheduledAt)
    {
        if (!_slots.TryGetValue(key, out var slot) || _runRule is not { } run) return;
        // Where a cluster's slot fires is what decides which node checks its rules: said when it comes here.
        if (slot.Shared && slot.Every is { } period && (slot.LastFired == default || scheduledAt - slot.LastFired > period * 3))
            SlotHere(Log, slot.Key, slot.Members.Length);
        slot.LastFired = scheduledAt;
        List<Member>? adopting = null;
        foreach (var member in slot.Members)
        {
            if (_stopping.IsCancellationRequested) return;
            if (member.Running is { IsCompleted: false })
            {
                // A check that outlives two of its periods keeps the rule from being checked at all: said once.
                if (slot.Every is { } every && member.LastRunAt is { } last && scheduledAt - last > every * 2 && !member.Told)
                {
                    member.Told = true;
                    StillRunning(Log, member.Rule, last);
                }
                continue;
            }
            if (!NeedsAdoption(slot, member, scheduledAt)) continue;
            (adopting ??= []).Add(member);
        }
        var adoption = adopting is null ? null : adopt!([.. adopting.Select(m => m.Rule)], _stopping.Token);
        foreach (var member in slot.Members)
        {
            if (_stopping.IsCancellationRequested) return;
            if (member.Running is { IsCompleted: false }) continue;
            member.Running = RunAsync(run, member, scheduledAt, _stopping.Token, adopting?.Contains(member) == true ? adoption : null);
        }
    }

    private bool NeedsAdoption(Slot slot, Member member, DateTimeOffset scheduledAt)
        => adopt is not null && cluster is not null
            && (member.LastRunAt is not { } last || (slot.Shared && (slot.Every is not { } every || scheduledAt - last > every * 1.5)));

    // Started from the slot's fire without a hand-off of its own: the check runs on this thread up to its probe, which
    // the pipeline starts apart (isolated), so one slow or blocking rule delays no other. Only a check over
    // max-concurrency waits, off this thread. A finished check lets go of its task (held, it kept the check's whole
    // graph alive until the rule's next fire).
    private async Task RunAsync(Func<string, DateTimeOffset, CancellationToken, Task> run, Member member, DateTimeOffset scheduledAt, CancellationToken cancellationToken,
        Task<IReadOnlySet<string>>? adoption = null)
    {
        try
        {
            if (adoption is not null && !await AdoptedAsync(adoption, member, cancellationToken)) return;
            member.LastRunAt = scheduledAt;
            member.Told = false;
            if (!_concurrency.Wait(0))
            {
                try { await _concurrency.WaitAsync(cancellationToken); }
                catch (OperationCanceledException) { return; }
            }
            try { await run(member.Rule, scheduledAt, cancellationToken); }
            finally { _concurrency.Release(); }
        }
        finally { member.Running = null; }
    }

    // A rule whose records could not be taken over (the database did not answer) skips this check: run on what this
    // node last knew, it could tell an outage another node already told. Its next fire tries again.
    // A take-over that does not end (seen in the cluster benchmark: a node rule not checked for minutes after a
    // failover, with nothing said) skips this check after AdoptionLimit, said once, and the next fire takes it over
    // again: the rule's member is never held by it.
    private async Task<bool> AdoptedAsync(Task<IReadOnlySet<string>> adoption, Member member, CancellationToken cancellationToken = default)
    {
        var rule = member.Rule;
        try
        {
            // Not taken yet (its node is sending one of its messages): checked from here once it has.
            if (!(await adoption.WaitAsync(AdoptionLimit, time ?? TimeProvider.System, cancellationToken)).Contains(rule)) return true;
            if (!member.Told)
            {
                member.Told = true;
                NotTakenYet(Log, rule);
            }
            return false;
        }
        catch (TimeoutException)
        {
            if (!member.Told)
            {
                member.Told = true;
                SlowTakeOver(Log, rule, AdoptionLimit);
            }
            return false;
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            Log.LogWarning("Rule {Rule}: its state could not be taken over from the cluster ({Reason}); this check is skipped", rule, ex.Message);
            return false;
        }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>How long a check waits for its rule to be taken over from the cluster before it is skipped.</summary>
    public static TimeSpan AdoptionLimit { get; } = TimeSpan.FromSeconds(10);

    // A cron rule of this node, fired by its own trigger: taken over before its first check here.
    private async Task RunCronAsync(Func<string, DateTimeOffset, CancellationToken, Task> run, string rule, DateTimeOffset scheduledAt, CancellationToken cancellationToken)
    {
        if (adopt is not null && cluster is not null && !_cronAdopted.ContainsKey(rule) && !await AdoptedAsync(adopt([rule], cancellationToken), new Member(rule))) return;
        _cronAdopted[rule] = true;
        await run(rule, scheduledAt, cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_scheduler is { } s && Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await s.Standby(CancellationToken.None);
            // Leaving the cluster first: its slots go to the other nodes while this one finishes its checks.
            if (_clusterSlots is { } shared) await shared.DisposeAsync();
            await _stopping.CancelAsync();
            // Checks started by slots are not Quartz jobs: they are waited for here, as Quartz waits for its own.
            var running = _slots.Values.SelectMany(x => x.Rules.Values).Select(m => m.Running).OfType<Task>().ToList();
            var checks = Task.WhenAll(running);
            if (await Task.WhenAny(checks, Task.Delay(ShutdownTimeout, cancellationToken)) != checks)
                Log.LogWarning("Checks did not stop within {Timeout}; exiting without waiting for them", ShutdownTimeout);
            // Running checks were cancelled by the engine; a job that still does not finish must not hold up the exit.
            var shutdown = s.Shutdown(waitForJobsToComplete: true, CancellationToken.None).AsTask();
            var limit = Task.Delay(ShutdownTimeout, cancellationToken);
            if (await Task.WhenAny(shutdown, limit) != shutdown)
                Log.LogWarning("The scheduler did not stop within {Timeout}; exiting without waiting for it", ShutdownTimeout);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        if (_services is not null) await _services.DisposeAsync();
        _stopping.Dispose();
    }

    // The jobs are stateless singletons: no per-fire DI scope or reflection over job data.
    private sealed class SingletonJobFactory(RuleJob rule, TickJob tick, SlotJob slot) : Quartz.Extensibility.IJobFactory
    {
        public ValueTask<Quartz.Extensibility.JobScope> CreateJob(Quartz.Extensibility.TriggerFiredBundle bundle, IScheduler scheduler, CancellationToken cancellationToken)
            => ValueTask.FromResult(new Quartz.Extensibility.JobScope(
                bundle.JobDetail.JobType == typeof(TickJob) ? tick : bundle.JobDetail.JobType == typeof(SlotJob) ? slot : rule, null!));

        public ValueTask ReturnJob(Quartz.Extensibility.JobScope scope, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class RuleJob(Func<string, DateTimeOffset, CancellationToken, Task> run) : IJob
    {
        public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
            => await run(context.MergedJobDataMap.GetString("rule")!, context.ScheduledFireTimeUtc ?? context.FireTimeUtc, cancellationToken);
    }

    private sealed class SlotJob(QuartzRuleScheduler owner) : IJob
    {
        public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
        {
            owner.Fire(context.MergedJobDataMap.GetString("slot")!, context.ScheduledFireTimeUtc ?? context.FireTimeUtc);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class TickJob(Action tick) : IJob
    {
        public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
        {
            tick();
            return ValueTask.CompletedTask;
        }
    }

    private ILogger Log => _log ??= loggerFactory.CreateLogger<QuartzRuleScheduler>();
    private ILogger? _log;

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "Cluster slot {Slot} fires on this node now ({Rules} rules)")]
    private static partial void SlotHere(ILogger logger, string slot, int rules);

    [LoggerMessage(EventId = 131, Level = LogLevel.Warning, Message = "Rule {Rule}: its check due at {Due:HH:mm:ss.fff} is still running; it is not checked again until that check ends")]
    private static partial void StillRunning(ILogger logger, string rule, DateTimeOffset due);

    [LoggerMessage(EventId = 134, Level = LogLevel.Warning, Message = "Rule {Rule}: taking it over from the cluster did not end within {Limit}; its checks are skipped until it does (each fire tries again)")]
    private static partial void SlowTakeOver(ILogger logger, string rule, TimeSpan limit);

    [LoggerMessage(EventId = 132, Level = LogLevel.Information, Message = "Rule {Rule}: not taken over yet (another live node is sending one of its messages); checked here once it has")]
    private static partial void NotTakenYet(ILogger logger, string rule);
}
