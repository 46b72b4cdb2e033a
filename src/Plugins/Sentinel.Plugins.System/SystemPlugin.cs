using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

public sealed class SystemPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<ProcessProbe, ProcessProbeOptions>("process",
            "A process is alive (by pidfile, command-line regex or name), in the expected number; zombies and reused PIDs count as dead.");
        registrar.AddProbe<MemoryProbe, MemoryProbeOptions>("memory",
            "System memory and swap, and a process's RSS with its growth per hour, to catch a leak before the limit.");
        registrar.AddProbe<NagiosProbe, NagiosProbeOptions>("nagios",
            "Runs any Nagios / Monitoring-Plugins check (argv, no shell): exit 0/1/2/3 -> healthy/degraded/unhealthy/unknown, perfdata into data.");
        registrar.AddProbe<NagiosProbe, NagiosProbeOptions>("check-program", "The nagios probe under another name.");
        registrar.AddAction<ExecAction, ExecActionOptions>("exec",
            "Runs a command (argv list; a shell only with shell: true) with cwd, env and timeout; non-zero exit or timeout fails.");
        registrar.AddAction<SignalAction, SignalActionOptions>("signal",
            "Stops hung processes (by pidfile, match or name): TERM, then KILL after grace; for services another supervisor restarts.");
    }
}
