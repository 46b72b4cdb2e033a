using Sentinel.Abstractions;

namespace Sentinel.Plugins.Network;

public sealed class NetworkPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddProbe<GatewayProbe, GatewayProbeOptions>("gateway",
            "Reachability of what a service depends on: DNS, TCP connect, optional TLS handshake (validity, days to expiry), optional HTTP GET or WebSocket upgrade.");
}
