using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Scheduling;

namespace Sentinel.Engine.Tests.Support;

/// <summary>
/// The engine's scheduler for tests of time logic: nothing fires by itself. A test moves the fake clock with
/// <see cref="AdvanceAsync"/> (each rule fires at every due time on the way, as its trigger would, and the check is
/// awaited before the clock moves on) or fires one rule with <see cref="FireAsync"/>. Like the Quartz scheduler it
/// never runs one rule twice at once and skips fires missed while a check was still running.
/// </summary>
internal sealed class ManualRuleScheduler(FakeTimeProvider time) : IRuleScheduler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _rules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Func<string, DateTimeOffset, CancellationToken, Task>? _run;
    private Action? _tick;

    private sealed class Entry(RuleDefinition definition, DateTimeOffset next)
    {
        public RuleDefinition Definition { get; } = definition;
        public DateTimeOffset Next { get; set; } = next;
        public Quartz.CronExpression? Cron { get; } = definition.Cron is { } c ? new Quartz.CronExpression(c) : null;
    }

    /// <summary>Awaited after the checks of each step: the harness waits there for what they published to be handled.</summary>
    public Func<Task>? AfterChecks { get; set; }

    /// <summary>The rules that have a schedule now (paused and removed rules have none).</summary>
    public IReadOnlyCollection<string> Scheduled { get { lock (_lock) return _rules.Keys.ToList(); } }

    public Task StartAsync(Func<string, DateTimeOffset, CancellationToken, Task> runRule, Action tick, CancellationToken cancellationToken)
    {
        _run = runRule;
        _tick = tick;
        tick();
        return Task.CompletedTask;
    }

    public Task ScheduleAsync(RuleDefinition rule, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _rules.Remove(rule.Name);
            if (rule.Paused) return Task.CompletedTask;
            var entry = new Entry(rule, time.GetUtcNow());
            if (entry.Cron is { } cron) entry.Next = cron.GetNextValidTimeAfter(time.GetUtcNow()) ?? DateTimeOffset.MaxValue;
            _rules[rule.Name] = entry;
        }
        return Task.CompletedTask;
    }

    public Task UnscheduleAsync(string rule, CancellationToken cancellationToken)
    {
        lock (_lock) _rules.Remove(rule);
        return Task.CompletedTask;
    }

    /// <summary>Fires <paramref name="rule"/> now, as its trigger would (skipped if its last check still runs); waits for the check.</summary>
    public async Task FireAsync(string rule)
    {
        if (Start(rule, time.GetUtcNow()) is not { } run) return;
        await run.Within(what: "the check of " + rule);
        if (AfterChecks is { } after) await after().Within(what: "the events of the check of " + rule);
    }

    /// <summary>Fires <paramref name="rule"/> now without waiting for the check (for probes that wait on the fake clock).</summary>
    public void FireWithoutWaiting(string rule) => _ = Start(rule, time.GetUtcNow());

    /// <summary>
    /// Moves the clock forward by <paramref name="by"/>, stopping at every time a rule is due: there the due rules fire
    /// (and the engine's tick), and with <paramref name="waitForChecks"/> their checks finish before the clock moves on.
    /// </summary>
    public async Task AdvanceAsync(TimeSpan by, bool waitForChecks = true)
    {
        var target = time.GetUtcNow() + by;
        if (_stop.IsCancellationRequested)
        {
            time.Advance(by); // the engine is stopped: time passes with nothing checked
            return;
        }
        while (true)
        {
            await RunDueAsync(waitForChecks);
            DateTimeOffset next;
            lock (_lock) next = _rules.Count == 0 ? DateTimeOffset.MaxValue : _rules.Values.Min(e => e.Next);
            var now = time.GetUtcNow();
            if (next > target) break;
            if (next > now) time.Advance(next - now);
        }
        var rest = target - time.GetUtcNow();
        if (rest > TimeSpan.Zero) time.Advance(rest);
        await RunDueAsync(waitForChecks);
    }

    /// <summary>Fires every rule due at the current time (each once: missed fires are skipped) and ticks.</summary>
    public async Task RunDueAsync(bool waitForChecks = true)
    {
        if (_stop.IsCancellationRequested) return;
        _tick?.Invoke();
        var now = time.GetUtcNow();
        List<(string Rule, DateTimeOffset At)> due;
        lock (_lock)
        {
            due = [];
            foreach (var (name, entry) in _rules)
            {
                if (entry.Next > now) continue;
                due.Add((name, entry.Next));
                entry.Next = NextAfter(entry, now);
            }
        }
        var started = due.Select(d => Start(d.Rule, d.At)).OfType<Task>().ToList();
        if (!waitForChecks) return;
        await Task.WhenAll(started).Within(what: "the checks fired at " + now.ToString("O"));
        if (started.Count > 0 && AfterChecks is { } after) await after().Within(what: "the events of the checks fired at " + now.ToString("O"));
    }

    private static DateTimeOffset NextAfter(Entry entry, DateTimeOffset now)
    {
        if (entry.Cron is { } cron) return cron.GetNextValidTimeAfter(now) ?? DateTimeOffset.MaxValue;
        var every = entry.Definition.Every!.Value;
        var missed = (now - entry.Next).Ticks / every.Ticks;
        return entry.Next + TimeSpan.FromTicks(every.Ticks * (missed + 1));
    }

    private Task? Start(string rule, DateTimeOffset scheduledAt)
    {
        var run = _run ?? throw new InvalidOperationException("the scheduler is not started");
        lock (_lock)
        {
            if (_stop.IsCancellationRequested) return null;
            if (_running.TryGetValue(rule, out var previous) && !previous.IsCompleted) return null;
            var task = Task.Run(() => run(rule, scheduledAt, _stop.Token));
            _running[rule] = task;
            return task;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        List<Task> running;
        lock (_lock)
        {
            if (_stop.IsCancellationRequested) return;
            _stop.Cancel();
            running = _running.Values.ToList();
        }
        // A check that ignores cancellation must not hold up the engine's stop (as in the Quartz scheduler).
        await Task.WhenAny(Task.WhenAll(running), Task.Delay(TimeSpan.FromSeconds(10), CancellationToken.None));
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        _stop.Dispose();
    }
}
