using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

public sealed class SystemPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddProbe<ProcessProbe, ProcessProbeOptions>("process",
            "A process is alive (by pidfile, command-line regex or name), in the expected number; zombies and reused PIDs count as dead.");
}
