using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Isolation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Remediation;

/// <summary>
/// Applies a rule's remediation policy: decides on each failed check (and on each exit of a supervised service)
/// whether an attempt is due, runs the attempt's actions isolated (a throwing or hanging action fails the attempt,
/// never the engine), and publishes <see cref="RemediationEvent"/>s. One attempt at a time per rule.
/// </summary>
internal sealed partial class RuleRemediator : IAsyncDisposable
{
    // A hard cap on one action, over the action's own timeout, so a plugin that ignores cancellation cannot hold the rule.
    private static readonly TimeSpan ActionCap = TimeSpan.FromMinutes(10);
    private const int OutputLines = 20;

    private readonly IRemediationHost _host;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationToken _stopping;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _timerLock = new();
    private ITimer? _retry;
    private volatile bool _inAttempt;
    private volatile bool _pendingStart;
    private volatile bool _activated;
    private int _disposed;

    public RuleRemediator(RuleDefinition definition, IReadOnlyList<IAction> actions, IRemediationHost host, ILoggerFactory loggers,
        TimeProvider time, CancellationToken stopping)
    {
        Definition = definition;
        Actions = actions;
        _host = host;
        _logger = loggers.CreateLogger("Sentinel.Remediation");
        _time = time;
        _stopping = stopping;
        if (definition.Supervise is { } spec) Supervisor = new Supervisor(definition.Name, spec, _logger, time, OnExit);
    }

    public RuleDefinition Definition { get; private set; }
    public IReadOnlyList<IAction> Actions { get; private set; }
    public Supervisor? Supervisor { get; private set; }
    private string Rule => Definition.Name;

    /// <summary>The supervised service's process, while it runs.</summary>
    public SupervisedProcess? RunningProcess => Supervisor is { IsRunning: true } s ? s.Current : null;

    /// <summary>No process runs because one is being (re)started: an attempt runs, or one is due and the budget is not spent.</summary>
    public bool Restarting => Supervisor is { IsRunning: false }
        && (_inAttempt || (_pendingStart && _host.GetState(Rule)?.Remediation is not { GaveUp: true }));
    private bool HasOwnProbe => Definition.Probe.ImplementationType != typeof(SupervisedProbe);

    /// <summary>Takes a changed definition. A changed supervise block restarts the service with the new one.</summary>
    public async Task UpdateAsync(RuleDefinition definition, IReadOnlyList<IAction> actions)
    {
        var old = Definition;
        Definition = definition;
        var oldActions = Actions;
        Actions = actions;
        foreach (var a in oldActions) await DisposeActionAsync(a);
        if (Supervisor is null || definition.Supervise is null) return;
        var changed = SupervisedSpecText(old.Supervise) != SupervisedSpecText(definition.Supervise);
        Supervisor.Spec = definition.Supervise;
        if (changed && _activated && Supervisor.IsRunning)
        {
            LogSpecChanged(_logger, Rule);
            _ = Task.Run(RestartForNewSpecAsync);
        }
    }

    private async Task RestartForNewSpecAsync()
    {
        try
        {
            await _gate.WaitAsync(_stopping);
            try
            {
                await Supervisor!.StopAsync(_stopping);
                var (ok, message, output) = await StartConfirmedAsync();
                if (!ok) Publish(RemediationEventKind.RemediationFailed, 0, message, output);
            }
            finally { _gate.Release(); }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { }
        catch (Exception ex) { LogRemediatorFailed(_logger, Rule, ex); }
    }

    private static string SupervisedSpecText(SuperviseSpec? s) => s is null ? "" : System.Text.Json.JsonSerializer.Serialize(s, SentinelJson.Options);

    /// <summary>
    /// After the configuration is applied: adopt the service a previous Sentinel left running, or start it (in the
    /// background: a start period must not hold up the engine).
    /// </summary>
    public void Activate()
    {
        if (_activated || Supervisor is null) return;
        _activated = true;
        var saved = _host.GetState(Rule)?.Remediation;
        if (saved?.Process is { } p && Supervisor.TryAdopt(p)) return;
        // Killed right after a start, before the record reached the state file: the pidfile still tells.
        if (saved?.Process is null && Supervisor.FindLeftover() is { } leftover && Supervisor.TryAdopt(leftover))
        {
            _host.UpdateRemediation(Rule, s => s with { Process = leftover });
            return;
        }
        if (Definition.Paused || _host.GetState(Rule) is { Status: RuleStatus.Paused }) return;
        _ = Task.Run(() => StartAfterActivationAsync(saved));
    }

    private async Task StartAfterActivationAsync(RemediationState? saved)
    {
        try
        {
            if (Definition.Supervise!.StopOnExit && saved is { } old && (old.Streak > 0 || old.GaveUp || old.Process is not null))
            {
                // Sentinel itself stopped this service when it last stopped (stop-on-exit): starting it with Sentinel is a
                // start, not the next retry of an old episode, so a gave-up left from the previous run cannot keep it down.
                saved = _host.UpdateRemediation(Rule, s => RemediationPlanner.NewEpisode(s) with { Process = null });
            }
            if (saved?.Process is not null)
            {
                // It was running under the previous Sentinel and is gone now: that is an exit, under the policy.
                _host.UpdateRemediation(Rule, s => s with { Process = null });
                if (Definition.Supervise!.Restart == RestartMode.Never) return;
                _pendingStart = true;
                await TryRemediateAsync("the service exited while Sentinel was not running");
                return;
            }
            if (saved is { Streak: > 0 })
            {
                _pendingStart = true;
                await TryRemediateAsync("the service was being restarted when Sentinel stopped");
                return;
            }
            await _gate.WaitAsync(_stopping);
            try
            {
                var (ok, message, output) = await StartConfirmedAsync();
                if (ok) return;
                Publish(RemediationEventKind.RemediationFailed, 0, message, output);
                if (Definition.Supervise!.Restart == RestartMode.Never) return;
                _pendingStart = true;
            }
            finally { _gate.Release(); }
            await TryRemediateAsync("the service failed to start");
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { }
        catch (Exception ex) { LogRemediatorFailed(_logger, Rule, ex); }
    }

    /// <summary>Called after every check of the rule, with its new state.</summary>
    public void OnCheck(RuleState state, CheckRecord check)
    {
        if (Volatile.Read(ref _disposed) == 1) return;
        var now = check.At;
        var policy = Definition.Policy;
        if (check.IsSuccess)
        {
            var reset = false;
            _host.UpdateRemediation(Rule, s =>
            {
                var next = RemediationPlanner.Healthy(s, policy, now, out var r);
                reset = r;
                return next;
            });
            if (reset) LogReset(_logger, Rule, Duration.Format(policy.StableAfter));
            return;
        }
        var rs = _host.UpdateRemediation(Rule, s => RemediationPlanner.Failed(s, now));
        if (state.Status != RuleStatus.Down) return;
        if (Supervisor is not null)
        {
            if (!Supervisor.IsRunning) return; // the exit path owns restarts of a stopped service
            if (Actions.Count == 0 && Definition.Supervise!.Restart == RestartMode.Never) return;
        }
        else if (Actions.Count == 0) return;
        if (!RemediationPlanner.FailuresWarrantAttempt(rs, Definition.FailureThreshold, now)) return;
        _ = Task.Run(() => TryRemediateAsync(check.Description ?? "the check failed"));
    }

    private void OnExit(SupervisorExit exit)
    {
        _host.UpdateRemediation(Rule, s => s.Process == exit.Process ? s with { Process = null } : s);
        var mode = Definition.Supervise!.Restart;
        var restart = !(mode == RestartMode.Never || (mode == RestartMode.OnFailure && !exit.Failed));
        // Set before the check the exit asks for, so a probe of the service sees it as restarting, not as gone. An
        // exit during an attempt (right after a start whose start period has passed) is restarted like any other,
        // once the attempt is done: the attempt cannot have seen it.
        if (restart) _pendingStart = true;
        Publish(RemediationEventKind.Exited, _host.GetState(Rule)?.Remediation?.Streak ?? 0, $"the service (pid {exit.Process.Pid}) {exit.Describe()}", Supervisor!.Tail(OutputLines));
        _host.RequestCheck(Rule);
        if (!restart) return;
        var policy = Definition.Policy;
        // A service that ran long enough (and, with a probe of its own, was healthy long enough) starts a fresh episode.
        var since = HasOwnProbe ? _host.GetState(Rule)?.Remediation?.HealthySince : exit.Process.StartedAt;
        if (since is { } healthy)
        {
            var reset = false;
            _host.UpdateRemediation(Rule, s =>
            {
                var next = RemediationPlanner.Healthy(s, policy, exit.At, out var r, healthy);
                reset = r;
                return next;
            });
            if (reset) LogReset(_logger, Rule, Duration.Format(policy.StableAfter));
        }
        _host.UpdateRemediation(Rule, s => RemediationPlanner.Exited(s, Definition.Supervise!, exit.At - exit.Process.StartedAt));
        _ = Task.Run(() => TryRemediateAsync($"the service {exit.Describe()}", queue: true));
    }

    /// <summary>A rule this one depends on is healthy again: a restart deferred for it may go ahead.</summary>
    public void OnDependencyRecovered()
    {
        if (_pendingStart && Supervisor is { IsRunning: false }) _ = Task.Run(() => TryRemediateAsync("a dependency recovered"));
    }

    private static async ValueTask DisposeActionAsync(IAction action)
    {
        switch (action)
        {
            case IAsyncDisposable ad: await ad.DisposeAsync(); break;
            case IDisposable d: d.Dispose(); break;
        }
    }

    /// <summary>Stops timers and watching; stops the service when <paramref name="stopService"/> (rule removed, or stop-on-exit).</summary>
    public async ValueTask DisposeAsync(bool stopService)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        lock (_timerLock) _retry?.Dispose();
        if (Supervisor is not null)
        {
            await Supervisor.DisposeAsync(stopService);
            // Stopped on purpose: the next start is a fresh start, not a restart after a crash.
            if (stopService) _host.UpdateRemediation(Rule, s => s.Process is null ? s : s with { Process = null });
        }
        foreach (var a in Actions) await DisposeActionAsync(a);
    }

    public ValueTask DisposeAsync() => DisposeAsync(stopService: false);

    [LoggerMessage(EventId = 510, Level = LogLevel.Warning, Message = "Rule {Rule}: remediation attempt {Attempt}: {Reason}")]
    private static partial void LogAttempt(ILogger logger, string rule, int attempt, string reason);

    [LoggerMessage(EventId = 511, Level = LogLevel.Information, Message = "Rule {Rule}: attempt {Attempt} done: {Outcome}")]
    private static partial void LogRemediated(ILogger logger, string rule, int attempt, string outcome);

    [LoggerMessage(EventId = 512, Level = LogLevel.Error, Message = "Rule {Rule}: attempt {Attempt} failed: {Outcome}")]
    private static partial void LogRemediationFailed(ILogger logger, string rule, int attempt, string outcome);

    [LoggerMessage(EventId = 513, Level = LogLevel.Error, Message = "Rule {Rule}: gave up after {Attempts} attempts within {Within}; retrying every {RetryAfter}")]
    private static partial void LogGaveUp(ILogger logger, string rule, int attempts, string within, string retryAfter);

    [LoggerMessage(EventId = 514, Level = LogLevel.Information, Message = "Rule {Rule}: stable for {StableAfter}: the restart budget and backoff are reset")]
    private static partial void LogReset(ILogger logger, string rule, string stableAfter);

    [LoggerMessage(EventId = 515, Level = LogLevel.Information, Message = "Rule {Rule}: not remediated while '{Dependency}', which it depends on, is down")]
    private static partial void LogDeferred(ILogger logger, string rule, string dependency);

    [LoggerMessage(EventId = 516, Level = LogLevel.Information, Message = "Rule {Rule}: the supervise block changed: restarting the service")]
    private static partial void LogSpecChanged(ILogger logger, string rule);

    [LoggerMessage(EventId = 517, Level = LogLevel.Error, Message = "Rule {Rule}: remediation failed unexpectedly")]
    private static partial void LogRemediatorFailed(ILogger logger, string rule, Exception ex);
}
