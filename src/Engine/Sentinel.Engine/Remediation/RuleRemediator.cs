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

    // queue: wait for a running attempt (or start) to end instead of dropping the request. An exit or a due retry
    // must not be lost because the gate was busy at that moment; a failing check comes again with the next check.
    private async Task TryRemediateAsync(string reason, bool queue = false)
    {
        try
        {
            if (!(queue ? await _gate.WaitAsync(Timeout.InfiniteTimeSpan, _stopping) : await _gate.WaitAsync(0))) return;
        }
        catch (OperationCanceledException) { return; }
        try
        {
            if (Volatile.Read(ref _disposed) == 1 || _stopping.IsCancellationRequested) return;
            if (Supervisor is not null && _pendingStart && Supervisor.IsRunning) { _pendingStart = false; return; }
            if (_host.FirstDown(Definition.DependsOn) is { } down)
            {
                LogDeferred(_logger, Rule, down);
                return;
            }
            var policy = Definition.Policy;
            var now = _time.GetUtcNow();
            var state = _host.GetState(Rule)?.Remediation ?? new RemediationState();
            var decision = RemediationPlanner.Decide(state, policy, now);
            switch (decision.Kind)
            {
                case RemediationDecisionKind.GiveUp:
                    state = _host.UpdateRemediation(Rule, s => RemediationPlanner.GiveUp(s, policy, now));
                    LogGaveUp(_logger, Rule, state.Streak, Duration.Format(policy.BudgetWithin), Duration.Format(policy.RetryAfter));
                    Publish(RemediationEventKind.GaveUp, state.Streak,
                        $"gave up after {state.Streak} attempts ({policy.BudgetMax} allowed within {Duration.Format(policy.BudgetWithin)}): {reason}; "
                        + $"one more attempt every {Duration.Format(policy.RetryAfter)} until it is stable for {Duration.Format(policy.StableAfter)}",
                        Supervisor?.Tail(OutputLines) ?? []);
                    ArmRetry(state.NextAttemptAt!.Value, reason);
                    return;
                case RemediationDecisionKind.Wait:
                    ArmRetry(decision.At, reason);
                    return;
            }
            await AttemptAsync(decision.Attempt, reason, now);
            if (Supervisor is not null && !Supervisor.IsRunning && _pendingStart)
                ArmRetry(_host.GetState(Rule)?.Remediation?.NextAttemptAt ?? _time.GetUtcNow(), "the service is still not running");
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { }
        catch (Exception ex) { LogRemediatorFailed(_logger, Rule, ex); }
        finally { _gate.Release(); }
    }

    private async Task<(bool Ok, string Message)> AttemptAsync(int attempt, string reason, DateTimeOffset now)
    {
        int? rate = null;
        _host.UpdateRemediation(Rule, s => RemediationPlanner.CountRate(RemediationPlanner.Attempted(s, Definition.Policy, now, Random.Shared.NextDouble()),
            Definition.RestartRate, now, out rate));
        _inAttempt = true;
        try
        {
            LogAttempt(_logger, Rule, attempt, reason);
            Publish(RemediationEventKind.Remediating, attempt, $"attempt {attempt}: {reason}", [], rate);
            var (ok, message, output) = await RunAttemptAsync(attempt);
            _host.UpdateRemediation(Rule, s => s with { LastOutcome = message });
            if (ok) LogRemediated(_logger, Rule, attempt, message);
            else LogRemediationFailed(_logger, Rule, attempt, message);
            Publish(ok ? RemediationEventKind.Remediated : RemediationEventKind.RemediationFailed, attempt, message, output);
            return (ok, message);
        }
        finally { _inAttempt = false; }
    }

    /// <summary>
    /// An operator asked for it (API or CLI): one attempt now, whatever the backoff or the budget say; it counts in the
    /// budget like any other. Null when an attempt is already running.
    /// </summary>
    public async Task<(bool Ok, string Message)?> RemediateNowAsync(string reason)
    {
        if (!await _gate.WaitAsync(0)) return null;
        try
        {
            var attempt = (_host.GetState(Rule)?.Remediation?.Streak ?? 0) + 1;
            return await AttemptAsync(attempt, reason, _time.GetUtcNow());
        }
        finally { _gate.Release(); }
    }

    /// <summary>
    /// The operator's `stop`: the service is stopped (its exit is no crash) and held so: no restart, no retry, and
    /// not started by the next Sentinel either, until <see cref="StartByOperatorAsync"/>. Waits for a running attempt.
    /// </summary>
    public async Task<string> StopByOperatorAsync()
    {
        await _gate.WaitAsync(_stopping);
        try
        {
            lock (_timerLock) _retry?.Dispose();
            _pendingStart = false;
            _host.UpdateRemediation(Rule, s => s with { Held = true });
            var pid = RunningProcess?.Pid;
            await Supervisor!.StopAsync(_stopping);
            _host.UpdateRemediation(Rule, s => s with { Process = null });
            return pid is { } p ? $"stopped pid {p}" : "it was not running";
        }
        finally { _gate.Release(); }
    }

    /// <summary>
    /// The operator's `start` or `restart`: a fresh start (a new episode: no backoff, the budget untouched), after
    /// stopping the running service when <paramref name="restart"/>. A failed start is retried under the policy.
    /// </summary>
    public async Task<(bool Ok, string Message)> StartByOperatorAsync(bool restart)
    {
        (bool Ok, string Message, IReadOnlyList<string> Output) result;
        await _gate.WaitAsync(_stopping);
        try
        {
            _host.UpdateRemediation(Rule, s => RemediationPlanner.NewEpisode(s) with { Held = false });
            if (RunningProcess is { } running)
            {
                if (!restart) return (true, $"already running as pid {running.Pid}");
                await Supervisor!.StopAsync(_stopping);
                _host.UpdateRemediation(Rule, s => s with { Process = null });
            }
            result = await StartConfirmedAsync();
            if (!result.Ok) Publish(RemediationEventKind.RemediationFailed, 0, result.Message, result.Output);
        }
        finally { _gate.Release(); }
        if (!result.Ok && _pendingStart) _ = Task.Run(() => TryRemediateAsync("the service failed to start", queue: true));
        return (result.Ok, result.Message);
    }

    // Only a stopped supervised service needs a timer; failing probes bring the next decision with the next check.
    private void ArmRetry(DateTimeOffset at, string reason)
    {
        if (Supervisor is null || !_pendingStart || Volatile.Read(ref _disposed) == 1) return;
        var due = at - _time.GetUtcNow();
        if (due < TimeSpan.Zero) due = TimeSpan.Zero;
        lock (_timerLock)
        {
            _retry?.Dispose();
            _retry = _time.CreateTimer(_ => _ = Task.Run(() => TryRemediateAsync(reason, queue: true)), null, due, Timeout.InfiniteTimeSpan);
        }
    }

    private async Task<(bool Ok, string Message, IReadOnlyList<string> Output)> RunAttemptAsync(int attempt)
    {
        var output = new ActionOutput(OutputLines);
        var done = new List<string>();
        foreach (var (action, def) in Actions.Zip(Definition.Remediate))
        {
            var context = new ActionContext
            {
                RuleName = Rule, Event = "remediate", Attempt = attempt, Output = output, TimeProvider = _time, Logger = _logger,
                Message = $"{Rule}: remediation attempt {attempt}", LastResult = null,
            };
            if (action is BuiltIn.RestartAction && Supervisor is { } own)
            {
                if (own.IsRunning) await own.StopAsync(_stopping);
                var (started, startMessage, startOutput) = await StartConfirmedAsync();
                foreach (var line in startOutput) output.WriteLine(line);
                if (!started) return (false, $"restart failed: {startMessage}", output.Lines);
                done.Add("restart (" + startMessage + ")");
                continue;
            }
            try
            {
                var cap = new CancellationTokenSource(ActionCap, _time);
                var task = Isolated.Start(action.ExecuteAsync, context, cap, CancellationTokenSource.CreateLinkedTokenSource(cap.Token, _stopping));
                if (await Task.WhenAny(task, Task.Delay(ActionCap + TimeSpan.FromSeconds(5), _time, _stopping)) != task)
                    return (false, $"{def.Type.Name} did not finish within {Duration.Format(ActionCap)} and was abandoned", output.Lines);
                await task;
                done.Add(def.Type.Name);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { throw; }
            catch (Exception ex)
            {
                return (false, $"{def.Type.Name} failed: {ex.Message}", output.Lines);
            }
        }
        if (Supervisor is { } supervisor)
        {
            var mode = Definition.Supervise!.Restart;
            if (Actions.Count == 0 && supervisor.IsRunning) await supervisor.StopAsync(_stopping);
            if (!supervisor.IsRunning && mode != RestartMode.Never)
            {
                var ran = done.Count == 0 ? "" : "ran " + string.Join(", ", done) + "; ";
                var (ok, message, startOutput) = await StartConfirmedAsync();
                return (ok, ran + message, [.. output.Lines, .. startOutput]);
            }
        }
        return (true, done.Count == 0 ? "nothing to do" : "ran " + string.Join(", ", done), output.Lines);
    }

    /// <summary>Starts the supervised service and waits its start period: exiting in it is a failed start.</summary>
    private async Task<(bool Ok, string Message, IReadOnlyList<string> Output)> StartConfirmedAsync()
    {
        var supervisor = Supervisor!;
        SupervisedProcess process;
        try { process = supervisor.Start(); }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            return (false, ex.Message, []);
        }
        _host.UpdateRemediation(Rule, s => s with { Process = process });
        _pendingStart = false;
        var exit = await supervisor.WaitForExitAsync(process, Definition.Supervise!.StartPeriod, _stopping);
        if (exit is null) return (true, $"started pid {process.Pid}", []);
        _pendingStart = Definition.Supervise.Restart != RestartMode.Never;
        return (false, $"the service {exit.Describe()} within {Duration.Format(Definition.Supervise.StartPeriod)} of starting", supervisor.Tail(OutputLines));
    }

    private void Publish(RemediationEventKind kind, int attempt, string message, IReadOnlyList<string> output, int? rateExceeded = null)
        => _host.Publish(new RemediationEvent(Rule, kind, attempt, _time.GetUtcNow(), message, output, rateExceeded));

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
