using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Isolation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Remediation;

// Attempts: decided by the planner, run isolated (actions, or the supervised service started and confirmed),
// retried when due; and the operator's stop, start and restart.
internal sealed partial class RuleRemediator
{
    /// <summary>Completes once no attempt is running (what an attempt left behind is published by then).</summary>
    internal async Task WaitIdleAsync()
    {
        await _gate.WaitAsync();
        _gate.Release();
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
                {
                    _stopping.ThrowIfCancellationRequested();
                    return (false, $"{def.Type.Name} did not finish within {Duration.Format(ActionCap)} and was abandoned", output.Lines);
                }
                await task;
                done.Add(def.Type.Name);
            }
            // Cut short by Sentinel's own stop (whatever the action made of it): not a failed remediation, not alerted.
            catch (Exception) when (_stopping.IsCancellationRequested) { throw new OperationCanceledException(_stopping); }
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
}
