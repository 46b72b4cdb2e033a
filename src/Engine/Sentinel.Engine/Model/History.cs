using Sentinel.Abstractions;

namespace Sentinel.Engine.Model;

/// <summary>One check as history keeps it.</summary>
internal sealed record CheckPoint(DateTimeOffset At, ProbeStatus Status, RuleStatus State, TimeSpan Duration, string? Description = null, bool Stuck = false);

/// <summary>engine.history: how long checks and their hourly counts are kept.</summary>
internal sealed record HistorySettings(bool Enabled, TimeSpan Retention, TimeSpan DownsampledRetention, TimeSpan FlushInterval)
{
    public static HistorySettings Default { get; } = new(true, TimeSpan.FromDays(30), TimeSpan.FromDays(400), TimeSpan.FromSeconds(30));
}

/// <summary>Uptime over the last day, week and 30 days (to the hour): the share of checks taken while the rule was not down.</summary>
internal sealed record UptimeView(double? Day, double? Week, double? Month);
