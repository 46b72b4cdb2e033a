using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Files;

public sealed class BackupActionOptions
{
    [Required, FilePath, Description("The file to back up; * and ? are allowed in the file name.")]
    public string? Path { get; set; }

    [Required, FilePath, Description("Where the copies go: <name>.<UTC time>.bak.")]
    public string? BackupDir { get; set; }

    [Range(1, 100_000), Description("How many copies of each file to keep (the newest).")]
    public int Keep { get; set; } = 24;

    public FileFormat Format { get; set; } = FileFormat.Auto;
}

/// <summary>
/// Copies each valid file to the backup folder (atomically), unless its content equals the newest backup;
/// an invalid file is never backed up (it would push good copies out) and fails the action so it is seen.
/// </summary>
internal sealed class BackupAction(BackupActionOptions options, TimeProvider time) : IAction
{
    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(options.BackupDir!);
        var invalid = new List<string>();
        foreach (var file in StateFile.Expand(options.Path!))
        {
            cancellationToken.ThrowIfCancellationRequested();
            byte[] bytes;
            try { bytes = File.ReadAllBytes(file); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { invalid.Add($"{file} does not exist"); continue; }
            if (StateFile.Problem(bytes, StateFile.Resolve(options.Format, file)) is { } problem)
            {
                invalid.Add($"{file} {problem}");
                context.Output.WriteLine($"not backed up: {file} {problem}");
                continue;
            }
            var backups = StateFile.Backups(options.BackupDir!, file);
            if (backups.Count > 0 && StateFile.Hash(File.ReadAllBytes(backups[0])) == StateFile.Hash(bytes))
            {
                context.Output.WriteLine($"unchanged since {Path.GetFileName(backups[0])}: {file}");
                continue;
            }
            var target = StateFile.BackupName(options.BackupDir!, file, time.GetUtcNow());
            StateFile.WriteAtomic(target, bytes);
            context.Output.WriteLine($"backed up {file} -> {target}");
            foreach (var old in StateFile.Backups(options.BackupDir!, file).Skip(options.Keep)) File.Delete(old);
        }
        if (invalid.Count > 0)
            throw new ActionFailedException($"not backed up (invalid, the good backups are kept): {string.Join("; ", invalid)}", permanent: true);
        return ValueTask.CompletedTask;
    }
}
