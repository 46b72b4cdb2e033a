using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.IO.Compression;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Files;

public enum CleanupMode { Delete, Compress }

public sealed class CleanupActionOptions : IValidatableObject
{
    [Description("Absolute folders the action may touch; nothing outside them is ever deleted (symlinks are not followed).")]
    public List<string> Roots { get; set; } = [];

    [Description("File-name patterns inside each root, e.g. *.log, *.gz.")]
    public List<string> Patterns { get; set; } = [];

    [Description("Also look in subfolders.")]
    public bool Recursive { get; set; }

    [Description("Only files last written longer ago than this.")]
    public TimeSpan? MaxAge { get; set; }

    [Range(0, 100_000), Description("Always keep the newest N files of each pattern.")]
    public int? Keep { get; set; }

    [Range(0.0, 100.0), Description("Stop once this percentage of the root's filesystem is free (largest files first).")]
    public double? TargetFreePercent { get; set; }

    [Description("delete, or compress with gzip (file.log -> file.log.gz).")]
    public CleanupMode Mode { get; set; } = CleanupMode.Delete;

    [Description("Only report what would be done.")]
    public bool DryRun { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Roots.Count == 0) yield return new("set roots: the folders cleanup may touch, e.g. [/srv/bot/logs]", [nameof(Roots)]);
        foreach (var r in Roots.Where(r => !Path.IsPathRooted(r))) yield return new($"root '{r}' must be an absolute path", [nameof(Roots)]);
        foreach (var r in Roots.Where(r => Path.IsPathRooted(r) && Path.GetFullPath(r).TrimEnd('/').Length == 0))
            yield return new("root '/' is refused: name the folder to clean", [nameof(Roots)]);
        if (Patterns.Count == 0) yield return new("set patterns, e.g. [\"*.log.*\", \"*.gz\"]", [nameof(Patterns)]);
        foreach (var p in Patterns.Where(p => p.Contains('/') || p.Contains('\\') || p.Contains("..")))
            yield return new($"pattern '{p}' must be a file-name pattern (no '/' or '..'): use recursive: true for subfolders", [nameof(Patterns)]);
        if (MaxAge is null && Keep is null && TargetFreePercent is null)
            yield return new("say what is old: set max-age, keep, or target-free-percent (else every matching file would go)", [nameof(MaxAge)]);
    }
}

/// <summary>
/// Deletes or compresses files under its roots: those older than max-age, beyond the newest keep, and — with
/// target-free-percent — largest first only until that much space is free. Symlinks are never followed or
/// touched, and a path that resolves outside the roots is refused.
/// </summary>
internal sealed class CleanupAction(CleanupActionOptions options, TimeProvider time) : IAction
{
    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var candidates = new List<FileInfo>();
        var refused = new List<string>();
        foreach (var rootText in options.Roots)
        {
            var root = new DirectoryInfo(Path.GetFullPath(rootText));
            if (!root.Exists) { refused.Add($"root {root.FullName} does not exist"); continue; }
            if (root.LinkTarget is not null) { refused.Add($"root {root.FullName} is a symlink (name the real folder)"); continue; }
            var enumeration = new EnumerationOptions { RecurseSubdirectories = options.Recursive, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
            foreach (var pattern in options.Patterns)
            {
                var files = root.EnumerateFiles(pattern, enumeration).Where(f => Inside(root.FullName, f)).OrderByDescending(f => f.LastWriteTimeUtc).ToList();
                var old = files.Skip(options.Keep ?? 0);
                if (options.MaxAge is { } max) old = old.Where(f => time.GetUtcNow() - f.LastWriteTimeUtc > max);
                candidates.AddRange(old);
            }
        }
        candidates = candidates.DistinctBy(f => f.FullName).ToList();
        if (options.TargetFreePercent is not null) candidates = candidates.OrderByDescending(f => f.Length).ToList();
        long freed = 0;
        var done = 0;
        foreach (var file in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (options.TargetFreePercent is { } target && FreePercent(file.DirectoryName!) >= target && !options.DryRun) break;
            var size = file.Length;
            var verb = options.Mode == CleanupMode.Delete ? "delete" : "compress";
            if (options.DryRun)
            {
                context.Output.WriteLine($"would {verb} {file.FullName} ({new ByteSize(size)})");
                continue;
            }
            if (options.Mode == CleanupMode.Compress)
            {
                if (file.Extension == ".gz") continue;
                var gz = file.FullName + ".gz";
                using (var input = file.OpenRead())
                using (var output = new FileStream(gz, FileMode.CreateNew))
                using (var zip = new GZipStream(output, CompressionLevel.SmallestSize))
                    input.CopyTo(zip);
                freed += size - new FileInfo(gz).Length;
            }
            else freed += size;
            file.Delete();
            done++;
            context.Output.WriteLine($"{(options.Mode == CleanupMode.Delete ? "deleted" : "compressed")} {file.FullName} ({new ByteSize(size)})");
        }
        if (!options.DryRun)
            context.Output.WriteLine($"{done} files, {new ByteSize(Math.Max(0, freed))} freed" + (candidates.Count > 0 && options.TargetFreePercent is { } t
                ? $"; {FreePercent(candidates[0].DirectoryName!).ToString("0.#", CultureInfo.InvariantCulture)}% free (target {t.ToString(CultureInfo.InvariantCulture)}%)" : ""));
        if (refused.Count > 0) throw new ActionFailedException(string.Join("; ", refused), permanent: true);
        return ValueTask.CompletedTask;
    }

    // The file's real location (no symlink on the way) must be inside the root.
    private static bool Inside(string root, FileInfo file)
    {
        if (file.LinkTarget is not null) return false;
        var real = Path.GetFullPath(file.FullName);
        return real.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal);
    }

    private static double FreePercent(string path)
    {
        if (!DiskProbe.Stat(path, out var s, out _)) return 100;
        var unit = s.FragmentSize > 0 ? s.FragmentSize : s.BlockSize;
        var usable = (s.Blocks - s.BlocksFree + s.BlocksAvailable) * unit;
        return usable == 0 ? 100 : 100.0 * s.BlocksAvailable * unit / usable;
    }
}
