using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

public enum SignalName { Term, Int, Hup, Quit, Kill, Usr1, Usr2 }

public sealed class SignalActionOptions : IProcessSelector, IValidatableObject
{
    [FilePath, Description("File holding the PID of the process to stop.")]
    public string? Pidfile { get; set; }

    [Description("Regular expression over the command line: every matching process is signalled.")]
    public string? Match { get; set; }

    [Description("Process name (as in ps -e): every process of that name is signalled.")]
    public string? Name { get; set; }

    [Description("The first signal sent.")]
    public SignalName Signal { get; set; } = SignalName.Term;

    [Description("How long to wait for the processes to exit after the first signal before sending KILL.")]
    public TimeSpan Grace { get; set; } = TimeSpan.FromSeconds(10);

    ProcessScope? IProcessSelector.Of => ProcessScope.System;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var r in ProcessFinder.Validate(this, required: true, validationContext)) yield return r;
        if (Grace < TimeSpan.Zero) yield return new ValidationResult("grace cannot be negative", [nameof(Grace)]);
    }
}
