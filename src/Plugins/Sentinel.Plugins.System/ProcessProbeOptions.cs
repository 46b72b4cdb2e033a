using Sentinel.Abstractions;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Sentinel.Plugins.System;

public sealed class ProcessProbeOptions : IValidatableObject, IProcessSelector
{
    [Description("A file holding the PID of the process (e.g. /run/bot.pid).")]
    [FilePath]
    public string? Pidfile { get; set; }

    [Description("A regular expression over the full command line, like `pgrep -f` (e.g. python.*main\\.py).")]
    public string? Match { get; set; }

    [Description("The process name (as in `ps -o comm`, or the file name of its executable).")]
    public string? Name { get; set; }

    [Range(0, 100_000), Description("At least this many matching processes must run.")]
    public int Min { get; set; } = 1;

    [Range(1, 100_000), Description("At most this many may run (e.g. 1: exactly one bot, never two). Empty: no limit.")]
    public int? Max { get; set; }

    [Description("Where to look: service (the rule's supervised service: its current PID and its session; the default on a rule with supervise:) or system (every process; the default elsewhere).")]
    public ProcessScope? Of { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var r in ProcessFinder.Validate(this, required: true, validationContext)) yield return r;
        if (Max is { } max && max < Min)
            yield return new ValidationResult($"max ({max}) is smaller than min ({Min})", [nameof(Max)]);
    }
}
