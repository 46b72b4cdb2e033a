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
}

/// <summary>The judgement a probe makes of its target.</summary>
public enum ProbeStatus
{
    /// <summary>The target works.</summary>
    Healthy = 0,

    /// <summary>The target works with a warning (counted as a success by thresholds, shown as degraded).</summary>
    Degraded = 1,

    /// <summary>The target does not work.</summary>
    Unhealthy = 2,
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
