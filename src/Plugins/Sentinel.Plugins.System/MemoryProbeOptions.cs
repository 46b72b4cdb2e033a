using Sentinel.Abstractions;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Sentinel.Plugins.System;

public sealed class MemoryProbeOptions : IValidatableObject, IProcessSelector
{
    [Description("A file holding the PID of the process to measure. Without pidfile, match or name: system memory only.")]
    [FilePath]
    public string? Pidfile { get; set; }

    [Description("A regular expression over the full command line; the RSS of all matching processes is summed.")]
    public string? Match { get; set; }

    [Description("The process name (as in `ps -o comm`).")]
    public string? Name { get; set; }

    [Description("The window over which rss-growth (bytes per hour) is computed.")]
    public TimeSpan TrendWindow { get; set; } = TimeSpan.FromHours(1);

    [Description("Where to look: service (the rule's supervised service: its current PID and its session; the default on a rule with supervise:) or system (every process; the default elsewhere).")]
    public ProcessScope? Of { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var r in ProcessFinder.Validate(this, required: false, validationContext)) yield return r;
        if (TrendWindow < TimeSpan.FromSeconds(10))
            yield return new ValidationResult("trend-window must be at least 10s (e.g. 1h)", [nameof(TrendWindow)]);
    }
}
