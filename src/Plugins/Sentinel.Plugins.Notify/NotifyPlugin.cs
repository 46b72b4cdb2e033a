using Sentinel.Abstractions;

namespace Sentinel.Plugins.Notify;

public sealed class NotifyPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddAction<ConsoleNotifier, ConsoleNotifierOptions>("console", "Writes notifications to Sentinel's standard output (for the demo and for scripts).");
        registrar.AddAction<FileNotifier, FileNotifierOptions>("file", "Appends notifications to a file, one JSON object per line.");
        registrar.AddAction<WebhookNotifier, WebhookNotifierOptions>("webhook",
            "POSTs notifications as JSON: generic (with a template), or the Discord, Slack or Telegram format.");
    }
}
