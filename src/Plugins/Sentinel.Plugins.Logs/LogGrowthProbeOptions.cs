using Sentinel.Abstractions;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Sentinel.Plugins.Logs;

public sealed class LogGrowthProbeOptions : IValidatableObject
{
    [Required, Description("The file that must keep growing, e.g. /var/log/bot/bot.log.")]
    [FilePath]
    public string? Path { get; set; }

    [Description("How long the file may go without growing before the check fails.")]
    public TimeSpan MaxSilence { get; set; } = TimeSpan.FromMinutes(5);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MaxSilence <= TimeSpan.Zero)
            yield return new ValidationResult("max-silence must be longer than 0s, e.g. 5m", [nameof(MaxSilence)]);
    }
}
