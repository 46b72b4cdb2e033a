using Sentinel.Engine.Plugins;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Rules;

namespace Sentinel.Host;

/// <summary>`sentinel notify-test CHANNEL`: sends a test message now and prints what the server said.</summary>
internal static class NotifyTestCommand
{
    public static async Task<int> ExecuteAsync(string configPath, string channelName, CancellationToken cancellationToken)
    {
        using var loggers = Bootstrap.QuietLoggerFactory();
        var (catalog, config) = Bootstrap.LoadValid(configPath, loggers);
        using (catalog)
        {
            if (config is null) return Bootstrap.ExitConfigInvalid;
            var channels = config.Channels;
            if (channels.FirstOrDefault(c => c.Name == channelName) is not { } channel)
            {
                Console.Error.WriteLine(channels.Count == 0
                    ? $"error: no channel named '{channelName}': the configuration defines no channels (see docs/notifications.md)"
                    : $"error: no channel named '{channelName}'{DidYouMean.Suffix(channelName, channels.Select(c => c.Name), "channels")}");
                return Bootstrap.ExitConfigInvalid;
            }
            var action = new PluginActivator(loggers, TimeProvider.System).CreateAction("channel " + channel.Name, new ActionDefinition(channel.Type, channel.Options, channel.Location));
            Console.WriteLine($"Sending a test message on '{channel.Name}' ({channel.Type.Name})...");
            var (ok, output, error) = await ChannelTest.SendTestAsync(action, channel, TimeProvider.System, loggers.CreateLogger("Sentinel.Notify"), cancellationToken);
            (action as IDisposable)?.Dispose();
            // What the server said may echo the channel's secrets (a webhook token in its own address).
            var redactor = Sentinel.Engine.Api.Redactor.For(config, null);
            foreach (var line in output) Console.WriteLine("  " + redactor.Apply(line));
            if (ok)
            {
                Console.WriteLine($"ok: '{channel.Name}' accepted the message");
                return 0;
            }
            Console.Error.WriteLine($"failed: {redactor.Apply(error ?? "")}");
            return 1;
        }
    }
}
