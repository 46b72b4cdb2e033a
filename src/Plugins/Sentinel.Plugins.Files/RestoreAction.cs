using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Files;

public sealed class RestoreActionOptions
{
    [Required, FilePath, Description("The file to restore.")]
    public string? Path { get; set; }

    [Required, FilePath, Description("The backup folder the backup action writes.")]
    public string? BackupDir { get; set; }

    public FileFormat Format { get; set; } = FileFormat.Auto;
}

/// <summary>
/// Restores the newest valid backup over a missing or corrupt file. The corrupt file is moved aside
/// (<c>&lt;file&gt;.corrupt-&lt;time&gt;</c>), never deleted. A file that is valid again is left alone.
/// </summary>
internal sealed class RestoreAction(RestoreActionOptions options, TimeProvider time) : IAction
{
    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var file = options.Path!;
        var format = StateFile.Resolve(options.Format, file);
        if (File.Exists(file) && StateFile.Problem(file, format) is null)
        {
            context.Output.WriteLine($"{file} is valid: nothing to restore");
            return ValueTask.CompletedTask;
        }
        var backups = StateFile.Backups(options.BackupDir!, file);
        foreach (var backup in backups)
        {
            var bytes = File.ReadAllBytes(backup);
            if (StateFile.Problem(bytes, format) is { } problem)
            {
                context.Output.WriteLine($"skipped {Path.GetFileName(backup)}: {problem}");
                continue;
            }
            if (File.Exists(file))
            {
                var aside = $"{file}.corrupt-{time.GetUtcNow().UtcDateTime:yyyyMMdd'T'HHmmss'Z'}";
                File.Move(file, aside, overwrite: true);
                context.Output.WriteLine($"kept the corrupt file as {aside}");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            StateFile.WriteAtomic(file, bytes);
            context.Output.WriteLine($"restored {file} from {Path.GetFileName(backup)}");
            return ValueTask.CompletedTask;
        }
        throw new ActionFailedException(backups.Count == 0
            ? $"cannot restore {file}: there is no backup of it in {options.BackupDir}"
            : $"cannot restore {file}: none of its {backups.Count} backups in {options.BackupDir} is valid", permanent: true);
    }
}
