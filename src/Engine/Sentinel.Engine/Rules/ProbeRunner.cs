using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Isolation;

namespace Sentinel.Engine.Rules;

/// <summary>
/// Runs a rule's probe once under the engine's rules (Microsoft's DefaultHealthCheckService, in spirit): the
/// timeout is the engine's, a throwing probe becomes a failed result, a probe that ignores cancellation is
/// abandoned after a grace period and the rule is marked stuck, and the rule's conditions judge the data.
/// </summary>
internal static class ProbeRunner
{
    /// <summary>How long past its timeout a probe that ignores cancellation is waited for before it is abandoned.</summary>
    public static TimeSpan AbandonGrace { get; } = TimeSpan.FromSeconds(1);

    public static async Task<CheckRecord> RunAsync(RuleRuntime runtime, TimeProvider time, ILogger logger, CancellationToken stopping)
    {
        var def = runtime.Definition;
        var at = time.GetUtcNow();
        if (runtime.InFlight is { IsCompleted: false })
        {
            return new CheckRecord(ProbeStatus.Unhealthy,
                $"stuck: the check started {Duration.Format(at - runtime.InFlightSince)} ago ignored its timeout and is still running; this run was skipped",
                at, TimeSpan.Zero, Stuck: true);
        }
        var started = time.GetTimestamp();
        var timeout = new CancellationTokenSource(def.Timeout, time);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, timeout.Token);
        var context = new ProbeContext { RuleName = def.Name, TimeProvider = time, Logger = logger, Timeout = def.Timeout, State = runtime.State, Service = runtime.Service };
        var task = Isolated.Start(runtime.Check, context, timeout, linked);
        runtime.InFlight = task;
        runtime.InFlightSince = at;

        // Waited for up to its timeout and a grace; whatever the probe ends with is read below (SuppressThrowing).
        if (!task.IsCompleted) await ((Task)task).WaitAsync(def.Timeout + AbandonGrace, time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!task.IsCompleted)
        {
            stopping.ThrowIfCancellationRequested();
            return new CheckRecord(ProbeStatus.Unhealthy,
                $"timed out after {Duration.Format(def.Timeout)} and ignored cancellation: the probe was abandoned (stuck)",
                at, time.GetElapsedTime(started), Stuck: true);
        }

        ProbeResult result;
        runtime.InFlight = null; // finished: nothing left to be stuck (held, it kept the probe's task and result alive)
        try
        {
            result = await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            result = ProbeResult.Unhealthy($"timed out after {Duration.Format(def.Timeout)}");
        }
        catch (Exception ex)
        {
            result = ProbeResult.Unhealthy($"the probe failed with {ex.GetType().Name}: {ex.Message}", ex);
        }
        // Cut short by Sentinel's own stop: whatever the probe made of its cancellation (many report a cancelled request
        // as a failure) says nothing about the target, and must not take the rule down on a shutdown.
        stopping.ThrowIfCancellationRequested();
        var elapsed = time.GetElapsedTime(started);
        var status = result.Status;
        var description = result.Description;
        if (status != ProbeStatus.Unhealthy && def.Conditions.Count > 0 && Failed(def, result.Data) is { } failed)
        {
            status = ProbeStatus.Unhealthy;
            description = failed;
        }
        return new CheckRecord(status, description ?? (status == ProbeStatus.Healthy ? "ok" : status.ToString().ToLowerInvariant()), at, elapsed, result.Data);
    }

    // What the rule's conditions find wrong with the data, or null (in a method of its own: a lambda here, capturing the
    // result, made a closure at every check, conditions or not).
    private static string? Failed(RuleDefinition def, IReadOnlyDictionary<string, object>? data)
    {
        List<string>? failed = null;
        foreach (var c in def.Conditions)
            if (c.Evaluate(data) is { Passed: false } outcome) (failed ??= []).Add(outcome.Explanation);
        return failed is null ? null : string.Join("; ", failed);
    }
}
