using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

public sealed class NagiosProbeOptions : IValidatableObject
{
    [Description("The check program and its arguments, one item each (no shell), e.g. [/usr/lib/nagios/plugins/check_disk, -w, 10%, -p, /].")]
    public List<string> Command { get; set; } = [];

    [FilePath, Description("Working directory; relative to the config file's folder.")]
    public string? Cwd { get; set; }

    public Dictionary<string, string> Env { get; set; } = [];

    [Description("Output beyond this is read and dropped (a check that prints megabytes cannot exhaust memory).")]
    public ByteSize MaxOutput { get; set; } = new(64 * 1024);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Command.Count == 0 || string.IsNullOrWhiteSpace(Command[0]))
            yield return new ValidationResult("set command to the check program and its arguments, e.g. [/usr/lib/nagios/plugins/check_dummy, '0', ok]", [nameof(Command)]);
        if (Cwd is not null && !Directory.Exists(Cwd)) yield return new ValidationResult($"cwd {Cwd} is not a directory", [nameof(Cwd)]);
    }
}
