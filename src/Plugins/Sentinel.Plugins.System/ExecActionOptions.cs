using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

public sealed class ExecActionOptions : IValidatableObject
{
    [Description("The program and its arguments, one list item each, passed as they are (no shell, no globbing, no $VARS).")]
    public List<string> Command { get; set; } = [];

    [Description("Run the command through /bin/sh -c: then 'command' is one line of shell script.")]
    public bool Shell { get; set; }

    [FilePath, Description("Working directory; relative to the config file's folder. Default: Sentinel's working directory.")]
    public string? Cwd { get; set; }

    [Description("Extra environment variables for the command.")]
    public Dictionary<string, string> Env { get; set; } = [];

    [Description("How long the command may run before it is killed (with its children) and counted as failed.")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Command.Count == 0 || string.IsNullOrWhiteSpace(Command[0]))
            yield return new ValidationResult("set command to the program and its arguments, e.g. [systemctl, restart, my-bot]", [nameof(Command)]);
        else if (Shell && Command.Count > 1)
            yield return new ValidationResult("with shell: true, write command as one line of shell script, e.g. command: \"cd /srv/bot && ./start.sh\"", [nameof(Command)]);
        if (Timeout <= TimeSpan.Zero)
            yield return new ValidationResult("timeout must be longer than 0s, e.g. 30s", [nameof(Timeout)]);
        if (Cwd is not null && !Directory.Exists(Cwd))
            yield return new ValidationResult($"cwd {Cwd} is not a directory", [nameof(Cwd)]);
    }
}
