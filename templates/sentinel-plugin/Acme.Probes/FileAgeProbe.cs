using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Acme.Probes;

/// <summary>The rule's `with:` block: keys are the property names in kebab-case (path, max-age).</summary>
public sealed class FileAgeProbeOptions
{
    [Required, FilePath, Description("The file to watch; relative to the config file's folder.")]
    public string? Path { get; set; }

    [Description("How long ago the file may have been written.")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Measures one target and reports; never throws for a failing target, never sleeps or retries, honours the
/// cancellation token — Sentinel owns timeouts, thresholds and alerting. Data keys are what conditions use.
/// </summary>
internal sealed class FileAgeProbe(FileAgeProbeOptions options) : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var file = new FileInfo(options.Path!);
        if (!file.Exists) return ValueTask.FromResult(ProbeResult.Unhealthy($"{file.FullName} does not exist"));
        var age = context.TimeProvider.GetUtcNow() - file.LastWriteTimeUtc;
        var data = new Dictionary<string, object> { ["age"] = age, ["size"] = new ByteSize(file.Length) };
        return ValueTask.FromResult(age <= options.MaxAge
            ? ProbeResult.Healthy($"written {age.TotalSeconds:0}s ago", data)
            : ProbeResult.Unhealthy($"not written for {age.TotalMinutes:0} min", null, data));
    }
}
