using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace Sentinel.Plugins.System;

public sealed class ProcessProbeOptions : IValidatableObject
{
    [Description("A file holding the PID of the process (e.g. /run/bot.pid).")]
    public string? Pidfile { get; set; }

    [Description("A regular expression over the full command line, like `pgrep -f` (e.g. python.*main\\.py).")]
    public string? Match { get; set; }

    [Description("The process name (as in `ps -o comm`, or the file name of its executable).")]
    public string? Name { get; set; }

    [Range(0, 100_000), Description("At least this many matching processes must run.")]
    public int Min { get; set; } = 1;

    [Range(1, 100_000), Description("At most this many may run (e.g. 1: exactly one bot, never two). Empty: no limit.")]
    public int? Max { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var given = new[] { Pidfile, Name }.Count(v => !string.IsNullOrWhiteSpace(v));
        if (given == 0 && string.IsNullOrWhiteSpace(Match))
            yield return new ValidationResult("say which process: set pidfile, match or name");
        if (given == 2)
            yield return new ValidationResult("set pidfile or name, not both (match may be added to either, to check the command line)", [nameof(Name)]);
        if (Match is not null)
        {
            string? error = null;
            try { _ = new Regex(Match); }
            catch (ArgumentException ex) { error = ex.Message; }
            if (error is not null) yield return new ValidationResult($"match is not a valid regular expression: {error}", [nameof(Match)]);
        }
        if (Max is { } max && max < Min)
            yield return new ValidationResult($"max ({max}) is smaller than min ({Min})", [nameof(Max)]);
    }
}
