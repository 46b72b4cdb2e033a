using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Sentinel.Abstractions;

/// <summary>
/// The bounds of a duration option, in Sentinel's duration syntax: <c>[DurationRange("100ms", "1h")]</c>. A
/// <see cref="RangeAttribute"/> over <see cref="TimeSpan"/>, checked when the configuration is loaded (file, line and
/// column, what was found and what is allowed) and shown in the schema; no hand check is needed.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter)]
public sealed class DurationRangeAttribute : RangeAttribute
{
    /// <param name="minimum">The shortest allowed, e.g. <c>"1s"</c>.</param>
    /// <param name="maximum">The longest allowed (default ten years: no practical limit).</param>
    public DurationRangeAttribute(string minimum, string maximum = "3650d")
        : base(typeof(TimeSpan), Invariant(minimum), Invariant(maximum))
    {
        Shortest = Duration.Parse(minimum);
        Longest = Duration.Parse(maximum);
    }

    /// <summary>The shortest allowed (not allowed itself when <see cref="RangeAttribute.MinimumIsExclusive"/>).</summary>
    public TimeSpan Shortest { get; }

    /// <summary>The longest allowed.</summary>
    public TimeSpan Longest { get; }

    /// <summary>What the option is, in the message ("interval": "the shortest interval is 1s"); default "duration".</summary>
    public string What { get; set; } = "duration";

    /// <summary>A good value, added to the message (e.g. "10s").</summary>
    public string? Example { get; set; }

    /// <summary>Why a value is refused: "50ms is too short: the shortest interval is 100ms"; null when it is allowed.</summary>
    public string? Explain(TimeSpan value)
    {
        var e = Example is null ? "" : $", e.g. {Example}";
        if (value < Shortest || (MinimumIsExclusive && value == Shortest))
            return MinimumIsExclusive
                ? $"{Duration.Format(value)} is too short: a {What} must be longer than {Duration.Format(Shortest)}{e}"
                : $"{Duration.Format(value)} is too short: the shortest {What} is {Duration.Format(Shortest)}{e}";
        if (value > Longest || (MaximumIsExclusive && value == Longest))
            return $"{Duration.Format(value)} is too long: the longest {What} is {Duration.Format(Longest)}{e}";
        return null;
    }

    /// <inheritdoc/>
    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
        => value is TimeSpan t && Explain(t) is { } why ? new ValidationResult(why, validationContext.MemberName is { } m ? [m] : null) : ValidationResult.Success;

    private static string Invariant(string duration) => Duration.Parse(duration).ToString("c", CultureInfo.InvariantCulture);
}
