using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Notifications;

/// <summary>`sentinel notify-test`: one message through one channel, outside the outbox.</summary>
internal static class ChannelTest
{
    /// <summary>Sends a test message on a channel now, outside the outbox; returns what the channel reported.</summary>
    public static async Task<(bool Ok, IReadOnlyList<string> Output, string? Error)> SendTestAsync(IAction action, ChannelDefinition channel, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var item = new NotificationItem("notify-test", "test", "healthy", now, $"a test of channel '{channel.Name}' ({channel.Type.Name}) from `sentinel notify-test`");
        var n = MessageComposer.Compose([item], channel.Template, now, test: true);
        var output = new ActionOutput(50);
        try
        {
            using var cap = new CancellationTokenSource(NotificationCenter.SendCap, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cap.Token, ct);
            await action.ExecuteAsync(new ActionContext
            {
                RuleName = "notify-test", Event = "test", Message = n.Text, Notification = n, TimeProvider = time, Logger = logger, Output = output,
            }, linked.Token);
            return (true, output.Lines, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return (false, output.Lines, ex.Message + (ex is ActionFailedException { Permanent: true } ? " (permanent: would not be retried)" : ""));
        }
    }

}
