using Sentinel.Abstractions;

namespace Sentinel.Plugins.Notify;

public sealed class ConsoleNotifierOptions
{
    /// <summary>Write the short form (one line) instead of subject and body.</summary>
    public bool Short { get; set; }
}

internal sealed class ConsoleNotifier(ConsoleNotifierOptions options) : IAction
{
    private static readonly Lock Gate = new();

    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var n = context.Notification ?? throw new ActionFailedException("console is a notification channel: use it under notify:", permanent: true);
        var text = options.Short ? n.Short : $"{n.Subject}\n{n.Text}";
        lock (Gate) Console.Out.WriteLine($"=== notification ===\n{text}\n====================");
        context.Output.WriteLine("written to standard output");
        return ValueTask.CompletedTask;
    }
}
