
using Sentinel.Abstractions;
namespace Sentinel.TestPlugins.JsonOld;
public sealed class JsonOldPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar) => registrar.AddProbe<JsonOldProbe, NoOptions>("json-old", "Reports the Newtonsoft.Json version it runs with.");
}
public sealed class NoOptions;
public sealed class JsonOldProbe : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        => ValueTask.FromResult(ProbeResult.Healthy("ok", new Dictionary<string, object>
        {
            ["json-version"] = typeof(Newtonsoft.Json.JsonConvert).Assembly.GetName().Version!.ToString(),
            ["serialized"] = Newtonsoft.Json.JsonConvert.SerializeObject(new { a = 1 }),
        }));
}
