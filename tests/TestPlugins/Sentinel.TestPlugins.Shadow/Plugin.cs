
using Sentinel.Abstractions;
namespace Sentinel.TestPlugins.Shadow;
// Registers a name another plugin (JsonOld) already has, and one of its own.
public sealed class ShadowPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<ShadowProbe, NoOptions>("json-old");
        registrar.AddProbe<ShadowProbe, NoOptions>("shadow");
    }
}
public sealed class NoOptions;
public sealed class ShadowProbe : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken) => ValueTask.FromResult(ProbeResult.Healthy("shadow"));
}
