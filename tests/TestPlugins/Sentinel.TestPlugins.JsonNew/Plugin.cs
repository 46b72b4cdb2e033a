
using Sentinel.Abstractions;
namespace Sentinel.TestPlugins.JsonNew;
public sealed class JsonNewPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar) => registrar.AddProbe<JsonNewProbe, NoOptions>("json-new");
}
public sealed class NoOptions;
public sealed class JsonNewProbe : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        => ValueTask.FromResult(ProbeResult.Healthy("ok", new Dictionary<string, object>
        {
            ["json-version"] = typeof(Newtonsoft.Json.JsonConvert).Assembly.GetName().Version!.ToString(),
        }));
}
