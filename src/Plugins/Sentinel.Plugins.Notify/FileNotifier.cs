using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Notify;

public sealed class FileNotifierOptions
{
    [Required, FilePath, Description("The file notifications are appended to (JSON lines); relative to the config file's folder.")]
    public string? Path { get; set; }
}

internal sealed class FileNotifier(FileNotifierOptions options, TimeProvider time) : IAction
{
    private static readonly Lock Gate = new();
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var n = context.Notification ?? throw new ActionFailedException("file is a notification channel: use it under notify:", permanent: true);
        var line = JsonSerializer.Serialize(new { at = time.GetUtcNow(), subject = n.Subject, text = n.Text, items = n.Items, test = n.IsTest }, Json);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(options.Path!)!);
        lock (Gate) File.AppendAllText(options.Path!, line + "\n");
        context.Output.WriteLine($"appended to {options.Path}");
        return ValueTask.CompletedTask;
    }
}
