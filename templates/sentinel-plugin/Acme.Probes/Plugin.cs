using Sentinel.Abstractions;

namespace Acme.Probes;

/// <summary>Sentinel creates this and calls Register when it loads the plugin folder.</summary>
public sealed class Plugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddProbe<FileAgeProbe, FileAgeProbeOptions>("file-age", "A file was written recently (and is big enough).");
}
