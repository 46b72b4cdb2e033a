using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Files;

public sealed class FileValidProbeOptions
{
    [Required, FilePath, Description("The file; * and ? are allowed in the file name (every match must be valid).")]
    public string? Path { get; set; }

    [Description("auto (by extension: .json, .yaml/.yml, else any), json, yaml, or any (exists and not empty).")]
    public FileFormat Format { get; set; } = FileFormat.Auto;

    [Description("The file must have been written within this long (a state file that stopped changing).")]
    public TimeSpan? MaxAge { get; set; }
}

/// <summary>A state file exists, is not empty, parses, and is fresh. Data: size, age, valid, error.</summary>
internal sealed class FileValidProbe(FileValidProbeOptions options, TimeProvider time) : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var files = StateFile.Expand(options.Path!);
        if (files.Count == 0 || (files.Count == 1 && !File.Exists(files[0])))
            return Result(ProbeResult.Unhealthy($"{options.Path} does not exist", null, new Dictionary<string, object> { ["valid"] = false, ["error"] = "missing" }));
        long size = 0;
        var age = TimeSpan.Zero;
        foreach (var file in files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = new FileInfo(file);
            size += info.Exists ? info.Length : 0;
            var fileAge = time.GetUtcNow() - info.LastWriteTimeUtc;
            if (fileAge > age) age = fileAge;
            var data = new Dictionary<string, object> { ["size"] = new ByteSize(info.Exists ? info.Length : 0), ["age"] = fileAge, ["valid"] = false };
            if (StateFile.Problem(file, options.Format) is { } problem)
            {
                data["error"] = problem;
                return Result(ProbeResult.Unhealthy($"{file} {problem}", null, data));
            }
            if (options.MaxAge is { } max && fileAge > max)
            {
                data["valid"] = true;
                return Result(ProbeResult.Unhealthy($"{file} was last written {PluginText.Duration(fileAge)} ago (max-age {PluginText.Duration(max)})", null, data));
            }
        }
        return Result(ProbeResult.Healthy(files.Count == 1 ? $"{files[0]} is valid ({new ByteSize(size)})" : $"{files.Count} files valid ({new ByteSize(size)})",
            new Dictionary<string, object> { ["size"] = new ByteSize(size), ["age"] = age, ["valid"] = true }));
    }

    private static ValueTask<ProbeResult> Result(ProbeResult r) => ValueTask.FromResult(r);
}
