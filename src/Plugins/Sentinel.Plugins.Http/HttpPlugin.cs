using Sentinel.Abstractions;

namespace Sentinel.Plugins.Http;

public sealed class HttpPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddProbe<HttpProbe, HttpProbeOptions>("http", "Requests a URL; measures status, body (JSON-aware), headers and response time.");
}
