using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Quartz;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Scheduling;

/// <summary>
/// One Quartz job per rule (in-memory store), <c>every:</c> as a simple trigger and <c>cron:</c> as a cron
/// trigger; concurrent execution of one rule is disallowed and missed fires are skipped, not replayed.
/// </summary>
internal sealed class QuartzRuleScheduler(ILoggerFactory loggerFactory, int maxConcurrency) : IRuleScheduler
{
    private const string RuleGroup = "rules";
    private const string EngineGroup = "engine";

    /// <summary>How early a check may start, so that triggers due together are fired in one round.</summary>
    public static TimeSpan FireAheadWindow { get; internal set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How long stopping waits for running jobs to finish.</summary>
    public static TimeSpan ShutdownTimeout { get; } = TimeSpan.FromSeconds(10);
    private ServiceProvider? _services;
    private IScheduler? _scheduler;
    private int _stopped;

    public async Task StartAsync(Func<string, DateTimeOffset, CancellationToken, Task> runRule, Action tick, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        var ruleJob = new RuleJob(runRule);
        var tickJob = new TickJob(tick);
        // A unique name: several engines (tests, `sentinel check`) may live in one process.
        var name = "sentinel-" + Guid.NewGuid().ToString("N")[..12];
        services.AddQuartz(name, q =>
        {
            q.UseInMemoryStore();
            q.UseJobFactory(new SingletonJobFactory(ruleJob, tickJob));
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
        var key = new JobKey(rule.Name, RuleGroup);
        await scheduler.DeleteJob(key, cancellationToken);
        if (rule.Paused) return;
        var job = JobBuilder.Create<RuleJob>().WithIdentity(key).UsingJobData("rule", rule.Name).DisallowConcurrentExecution().Build();
        var builder = TriggerBuilder.Create().WithIdentity(rule.Name, RuleGroup).ForJob(key);
        ITrigger trigger = rule.Every is { } every
            ? builder.StartAt(DateTimeOffset.UtcNow.Add(Stagger(rule.Name, every))).WithSimpleSchedule(s => s.WithInterval(every).RepeatForever()
                .WithMisfireInstruction(SimpleTriggerMisfireInstruction.NextWithRemainingCount)).Build()
            : builder.StartNow().WithCronSchedule(rule.Cron!, c => c.WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)).Build();
        await scheduler.ScheduleJob(job, trigger, default, cancellationToken);
    }

    // Spread rules sharing an interval over it, so 10,000 rules at 10s do not all fire in the same millisecond.
    private static TimeSpan Stagger(string rule, TimeSpan every)
    {
        var hash = (uint)StringComparer.Ordinal.GetHashCode(rule);
        return TimeSpan.FromTicks((long)(hash % (ulong)Math.Max(1, Math.Min(every.Ticks, TimeSpan.FromSeconds(10).Ticks))));
    }

    public async Task UnscheduleAsync(string rule, CancellationToken cancellationToken)
    {
        if (_scheduler is not null) await _scheduler.DeleteJob(new JobKey(rule, RuleGroup), cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_scheduler is { } s && Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await s.Standby(CancellationToken.None);
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
    }

    // The jobs are stateless singletons: no per-fire DI scope or reflection over job data.
    private sealed class SingletonJobFactory(RuleJob rule, TickJob tick) : Quartz.Extensibility.IJobFactory
    {
        public ValueTask<Quartz.Extensibility.JobScope> CreateJob(Quartz.Extensibility.TriggerFiredBundle bundle, IScheduler scheduler, CancellationToken cancellationToken)
            => ValueTask.FromResult(new Quartz.Extensibility.JobScope(bundle.JobDetail.JobType == typeof(TickJob) ? tick : rule, null!));

        public ValueTask ReturnJob(Quartz.Extensibility.JobScope scope, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class RuleJob(Func<string, DateTimeOffset, CancellationToken, Task> run) : IJob
    {
        public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
            => await run(context.MergedJobDataMap.GetString("rule")!, context.ScheduledFireTimeUtc ?? context.FireTimeUtc, cancellationToken);
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
