using Sentinel.Abstractions;

namespace Sentinel.Plugins.Twilio;

public sealed class TwilioPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddAction<TwilioSmsNotifier, TwilioSmsNotifierOptions>("twilio-sms",
            "SMS through Twilio's Messages API (several recipients; bodies cut to fit; permanent errors not retried).");
}
