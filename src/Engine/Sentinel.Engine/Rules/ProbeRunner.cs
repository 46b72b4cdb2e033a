using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Rules;

/// <summary>
/// Runs a rule's probe once under the engine's rules (Microsoft's DefaultHealthCheckService, in spirit): the
/// timeout is the engine's, a throwing probe becomes a failed result, a probe that ignores cancellation is
/// abandoned after a grace period and the rule is marked stuck, and the rule's conditions judge the data.
/// </summary>
internal static class ProbeRunner
{
    /// <inheritdoc cref="ProbeCall.AbandonGrace"/>
    public static TimeSpan AbandonGrace => ProbeCall.AbandonGrace;

    public static async Task<CheckRecord> RunAsync(RuleRuntime runtime, TimeProvider time, ILogger logger, CancellationToken stopping)
    {
        var def = runtime.Definition;
        var at = time.GetUtcNow();
        var call = runtime.CallFor(time);
        var started = time.GetTimestamp();
        if (!call.TryStart(runtime.ContextFor(time, logger), def.Timeout, stopping, out var wait))
        {
            return new CheckRecord(ProbeStatus.Unhealthy,
                $"stuck: the check started {Duration.Format(at - runtime.InFlightSince)} ago ignored its timeout and is still running; this run was skipped",
                at, TimeSpan.Zero, Stuck: true);
        }
        runtime.InFlightSince = at;
        // Waited for up to its timeout and a grace (or until Sentinel stops).
        try { await wait.ConfigureAwait(false); }
        finally { call.Release(); }
        if (!call.Ended)
        {
            stopping.ThrowIfCancellationRequested();
            return new CheckRecord(ProbeStatus.Unhealthy,
                $"timed out after {Duration.Format(def.Timeout)} and ignored cancellation: the probe was abandoned (stuck)",
                at, time.GetElapsedTime(started), Stuck: true);
        }

        var result = call.Error switch
        {
            null => call.Result,
            OperationCanceledException when call.TimedOut => ProbeResult.Unhealthy($"timed out after {Duration.Format(def.Timeout)}"),
            var ex => ProbeResult.Unhealthy($"the probe failed with {ex.GetType().Name}: {ex.Message}", ex),
        };
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
