using Microsoft.Extensions.Logging;

namespace Sentinel.Abstractions;

/// <summary>
/// Measures one target. A probe reports failure in its <see cref="ProbeResult"/> and never throws for a
/// failing target; it honours <see cref="CancellationToken"/>, never sleeps or schedules, and never decides
/// whether to alert. The engine owns timeouts, thresholds and alert state. One instance serves one rule,
/// and its runs never overlap, so a stateful probe may keep its state (a file offset, a baseline) in fields.
/// </summary>
public interface IProbe
{
    /// <summary>Runs one check.</summary>
    /// <param name="context">What the engine knows about this run.</param>
    /// <param name="cancellationToken">Cancelled when the rule's timeout expires or Sentinel stops.</param>
    ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken);
}

/// <summary>What the engine tells a probe about one run.</summary>
public sealed class ProbeContext
{
    /// <summary>The name of the rule this run belongs to.</summary>
    public required string RuleName { get; init; }

    /// <summary>The clock to use for any time measurement, so tests can control time.</summary>
    public required TimeProvider TimeProvider { get; init; }

    /// <summary>A logger scoped to the rule.</summary>
    public required ILogger Logger { get; init; }

    /// <summary>The time limit the engine enforces on this run.</summary>
    public TimeSpan Timeout { get; init; }

    /// <summary>Durable state for this rule's probe, kept across Sentinel restarts.</summary>
    public IProbeState State
    {
        // Made at the first use: the engine always gives a rule's state, and a check should not allocate one to drop.
        get => _state ?? Interlocked.CompareExchange(ref _state, new ScratchState(), null) ?? _state;
        init => _state = value;
    }
    private IProbeState? _state;

    // Where a caller gives no state (a test, a one-off run): kept for this context only.
    private sealed class ScratchState : IProbeState
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _values = new(StringComparer.Ordinal);

        public string? Get(string key) => _values.GetValueOrDefault(key);

        public void Set(string key, string? value)
        {
            if (value is null) _values.TryRemove(key, out _);
            else _values[key] = value;
        }
    }

    /// <summary>
    /// The service the rule supervises (its <c>supervise:</c> block), read live at each check; null when the rule
    /// supervises nothing. Probes that look at processes scope themselves to it, so they see the service this
    /// Sentinel runs, not a namesake elsewhere on the box.
    /// </summary>
    public ISupervisedService? Service { get; init; }
}

/// <summary>
/// Keys of <see cref="System.ComponentModel.DataAnnotations.ValidationContext.Items"/> the engine sets when it
/// validates a probe's options, so options can be judged by the rule they are in.
/// </summary>
public static class ValidationKeys
{
    /// <summary>Present (true) when the probe's rule supervises a service (<see cref="ProbeContext.Service"/> will be set).</summary>
    public const string Supervised = "sentinel.supervised";
}

/// <summary>The service a rule supervises, as it is at the moment of asking.</summary>
public interface ISupervisedService
{
    /// <summary>The PID of the service's main process while it runs (the leader of its own session and process group); null otherwise.</summary>
    int? Pid { get; }

    /// <summary>When the running process was started; null when none runs.</summary>
    DateTimeOffset? StartedAt { get; }

    /// <summary>True while no process runs because Sentinel is restarting it (an attempt is running or due), not because it gave up.</summary>
    bool Restarting { get; }
}

/// <summary>The judgement a probe makes of its target.</summary>
public enum ProbeStatus
{
    // Unhealthy is 0 on purpose (as in Microsoft's HealthStatus): a result nobody set, default(ProbeResult), is a
    // failure, never a silent success.

    /// <summary>The target does not work. The default: a status nobody set fails.</summary>
    Unhealthy = 0,

    /// <summary>The target works with a warning (counted as a success by thresholds, shown as degraded).</summary>
    Degraded = 1,

    /// <summary>The target works.</summary>
    Healthy = 2,
}

/// <summary>The result of one probe run.</summary>
/// <param name="Status">The probe's judgement.</param>
/// <param name="Description">A short human text, used in status output and alerts.</param>
/// <param name="Exception">The error behind an unhealthy result, when there is one.</param>
/// <param name="Data">What the probe measured, keyed by kebab-case names (<c>status</c>, <c>response-time</c>,
/// <c>rss</c>...), judged by the rule's <c>conditions</c>. Values are numbers, strings, booleans,
/// <see cref="TimeSpan"/>, <see cref="ByteSize"/>, <see cref="System.Text.Json.JsonElement"/>, lists or
/// string-keyed dictionaries.</param>
public readonly record struct ProbeResult(
    ProbeStatus Status,
    string? Description = null,
    Exception? Exception = null,
    IReadOnlyDictionary<string, object>? Data = null)
{
    /// <summary>A healthy result.</summary>
    public static ProbeResult Healthy(string? description = null, IReadOnlyDictionary<string, object>? data = null)
        => new(ProbeStatus.Healthy, description, null, data);

    /// <summary>A degraded result: working, with a warning.</summary>
    public static ProbeResult Degraded(string? description = null, IReadOnlyDictionary<string, object>? data = null)
        => new(ProbeStatus.Degraded, description, null, data);

    /// <summary>An unhealthy result.</summary>
    public static ProbeResult Unhealthy(string? description = null, Exception? exception = null, IReadOnlyDictionary<string, object>? data = null)
        => new(ProbeStatus.Unhealthy, description, exception, data);
}

/// <summary>
/// Small durable state of one rule's probe (a file offset, a baseline), kept by the engine with the rule's
/// state and restored after a restart. Values are short strings; the state is written at the engine's next
/// state flush. A probe should store with its state whatever tells it the state still applies (the path it
/// belongs to, a file identity), since the rule's options may have changed in between.
/// </summary>
public interface IProbeState
{
    /// <summary>The value stored under <paramref name="key"/>, or null.</summary>
    string? Get(string key);

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>; null removes it.</summary>
    void Set(string key, string? value);
}
