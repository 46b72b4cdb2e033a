using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Logs;

public sealed class LogRegexProbeOptions : IValidatableObject
{
    [Required, Description("The log file; * and ? are allowed in the file name (e.g. /var/log/bot/*.log).")]
    [FilePath]
    public string? Path { get; set; }

    [Required, Description("A regular expression a line must match to count, e.g. ERROR|Traceback.")]
    public string? Pattern { get; set; }

    [Description("Regular expressions of lines that never count, even when they match pattern.")]
    public List<string> Ignore { get; set; } = [];

    [Range(1, 1_000_000), Description("The check fails when at least this many lines matched.")]
    public int MinMatches { get; set; } = 1;

    [Description("Count matches over this window (e.g. 5m). Empty: only the lines appended since the previous check.")]
    public TimeSpan? Window { get; set; }

    [Description("Read an existing file from its beginning on first sight, instead of from its end.")]
    public bool FromStart { get; set; }

    [Description("Lines longer than this are cut (binary garbage without newlines is read in pieces of this size).")]
    public ByteSize MaxLine { get; set; } = new(64 * 1024);

    [Description("At most this much is read per check; the rest is read by the next checks.")]
    public ByteSize MaxReadPerCheck { get; set; } = new(256L * 1024 * 1024);

    [Description("Treat pattern and ignore as case-insensitive.")]
    public bool IgnoreCase { get; set; }

    [Range(0, 200), Description("Also show up to this many lines after each match, up to the next line that starts a new record (a Python Traceback's KeyError, a .NET stack), when they are already written.")]
    public int ContextAfter { get; set; }

    [Description("A regular expression for the first line of a log record, where context-after stops. Default: a line starting with a date, a time or a level (INFO, WARN, ERROR ...).")]
    public string? RecordStart { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (name, regex) in new[] { (nameof(Pattern), Pattern), (nameof(RecordStart), RecordStart) }.Concat(Ignore.Select(i => (nameof(Ignore), (string?)i))))
            if (PluginText.RegexError(regex) is { } error)
                yield return new ValidationResult($"'{regex}' is not a valid regular expression: {error}", [name]);
        if (Window is { } w && w <= TimeSpan.Zero) yield return new ValidationResult("window must be longer than 0s, e.g. 5m", [nameof(Window)]);
        if (MaxLine.Bytes is < 256 or > 16 * 1024 * 1024) yield return new ValidationResult("max-line must be between 256B and 16MiB", [nameof(MaxLine)]);
        if (MaxReadPerCheck.Bytes < MaxLine.Bytes) yield return new ValidationResult("max-read-per-check must be at least max-line", [nameof(MaxReadPerCheck)]);
    }
}
