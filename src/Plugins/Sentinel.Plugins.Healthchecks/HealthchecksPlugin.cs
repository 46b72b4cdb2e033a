using Sentinel.Abstractions;

namespace Sentinel.Plugins.Healthchecks;

public sealed class HealthchecksPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddAction<HealthchecksPinger, HealthchecksPingerOptions>("healthchecks",
            "Pings a healthchecks.io check (or a self-hosted or compatible one): success, start, fail, log, exit status; rid pairing; body cut to the server's limit.");
}
