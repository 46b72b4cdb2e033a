using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Quartz;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Scheduling;

/// <summary>
/// Quartz (in-memory store) fires the rules: <c>every:</c> rules by slot (<see cref="IntervalShards"/>: one simple
/// trigger per interval and slot starts all of its rules), <c>cron:</c> rules one cron trigger each. A rule never runs
/// twice at once (a check still running when its next is due skips that one), and missed fires are skipped, not replayed.
/// </summary>
internal sealed class QuartzRuleScheduler(ILoggerFactory loggerFactory, int maxConcurrency) : IRuleScheduler
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
    private sealed class Slot(string key)
    {
        public string Key { get; } = key;
        public System.Collections.Concurrent.ConcurrentDictionary<string, Member> Rules { get; } = new(StringComparer.Ordinal);
        public volatile Member[] Members = [];

        public void Rebuild() => Members = [.. Rules.Values];
    }

    // A rule in its slot, and its check while one runs (a rule never runs twice at once).
    private sealed class Member(string rule)
    {
        public string Rule { get; } = rule;
        public volatile Task? Running;
    }

    public async Task StartAsync(Func<string, DateTimeOffset, CancellationToken, Task> runRule, Action tick, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        _runRule = runRule;
        var ruleJob = new RuleJob(runRule);
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
            if (rule.Paused) return;
            if (rule.Every is { } every)
            {
                var index = IntervalShards.SlotOf(rule.Name, every);
                var key = IntervalShards.Key(every, index);
                if (!_slots.TryGetValue(key, out var slot))
                {
                    slot = new Slot(key);
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

    // Out of its slot (a slot left empty loses its trigger) or its cron job.
    private async Task RemoveAsync(string rule, CancellationToken cancellationToken)
    {
        if (_slotOf.TryRemove(rule, out var slot))
        {
            slot.Rules.TryRemove(rule, out _);
            slot.Rebuild();
            if (slot.Rules.IsEmpty && _slots.TryRemove(slot.Key, out _))
                await _scheduler!.DeleteJob(new JobKey(slot.Key, SlotGroup), cancellationToken);
        }
        await _scheduler!.DeleteJob(new JobKey(rule, RuleGroup), cancellationToken);
    }

    // A slot's fire: its rules start at once (one whose last check still runs skips this one). The checks run on their
    // own, so one slow rule delays no other.
    private void Fire(string key, DateTimeOffset scheduledAt)
    {
        if (!_slots.TryGetValue(key, out var slot) || _runRule is not { } run) return;
        foreach (var member in slot.Members)
        {
            if (_stopping.IsCancellationRequested) return;
            if (member.Running is { IsCompleted: false }) continue;
            member.Running = RunAsync(run, member, scheduledAt, _stopping.Token);
        }
    }

    // Started from the slot's fire without a hand-off of its own: the check runs on this thread up to its probe, which
    // the pipeline starts apart (isolated), so one slow or blocking rule delays no other. Only a check over
    // max-concurrency waits, off this thread. A finished check lets go of its task (held, it kept the check's whole
    // graph alive until the rule's next fire).
    private async Task RunAsync(Func<string, DateTimeOffset, CancellationToken, Task> run, Member member, DateTimeOffset scheduledAt, CancellationToken cancellationToken)
    {
        try
        {
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

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_scheduler is { } s && Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await s.Standby(CancellationToken.None);
            await _stopping.CancelAsync();
            // Checks started by slots are not Quartz jobs: they are waited for here, as Quartz waits for its own.
            var running = _slots.Values.SelectMany(x => x.Rules.Values).Select(m => m.Running).OfType<Task>().ToList();
            var checks = Task.WhenAll(running);
            if (await Task.WhenAny(checks, Task.Delay(ShutdownTimeout, cancellationToken)) != checks)
                loggerFactory.CreateLogger<QuartzRuleScheduler>().LogWarning("Checks did not stop within {Timeout}; exiting without waiting for them", ShutdownTimeout);
            // Running checks were cancelled by the engine; a job that still does not finish must not hold up the exit.
            var shutdown = s.Shutdown(waitForJobsToComplete: true, CancellationToken.None).AsTask();
            var limit = Task.Delay(ShutdownTimeout, cancellationToken);
            if (await Task.WhenAny(shutdown, limit) != shutdown)
                loggerFactory.CreateLogger<QuartzRuleScheduler>().LogWarning("The scheduler did not stop within {Timeout}; exiting without waiting for it", ShutdownTimeout);
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
}
