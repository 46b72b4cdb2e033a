using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.TestPlugins.Versioned;

public sealed class VersionedPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar) => registrar.AddProbe<VersionedProbe, VersionedOptions>("versioned");
}

public sealed class VersionedOptions
{
    [Range(0, 100)] public int Offset { get; set; }
}

public sealed class VersionedProbe(VersionedOptions options) : IProbe
{
#if V2
    private const int Version = 2;
#else
    private const int Version = 1;
#endif
    private int _calls;

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        => ValueTask.FromResult(ProbeResult.Healthy($"v{Version}", new Dictionary<string, object>
        {
            ["version"] = Version + options.Offset,
            ["calls"] = ++_calls,
        }));
}
