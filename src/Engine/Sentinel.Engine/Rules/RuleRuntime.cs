using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Rules;

/// <summary>A rule as it runs: its definition and its probe instance. Rebuilt when the rule or its plugin changes.</summary>
internal sealed class RuleRuntime(RuleDefinition definition, IProbe probe, MemoryProbeState? state = null, IReadOnlyList<IAction>? run = null) : IAsyncDisposable
{
    /// <summary>The actions run after every check.</summary>
    public IReadOnlyList<IAction> Run { get; } = run ?? [];

    public RuleDefinition Definition { get; } = definition;
    public IProbe Probe { get; } = probe;

    /// <summary>The probe's check, as one delegate made once (a method group is a new delegate at each use).</summary>
    internal Func<ProbeContext, CancellationToken, ValueTask<ProbeResult>> Check { get; } = probe.CheckAsync;

    /// <summary>The probe's durable state; the engine persists it with the rule's state.</summary>
    public MemoryProbeState State { get; } = state ?? new MemoryProbeState();

    /// <summary>The service the rule supervises, as its probe sees it (null when it supervises nothing).</summary>
    public Sentinel.Abstractions.ISupervisedService? Service { get; init; }

    /// <summary>Serialises runs of this rule (scheduled and on demand).</summary>
    internal RunGate Gate { get; } = new();

    /// <summary>The probe task of the latest run; still running after its run ended means the probe is stuck.</summary>
    internal Task? InFlight { get; set; }
    internal DateTimeOffset InFlightSince { get; set; }

    /// <summary>1 when a check was asked for (a ping, an exit) while one ran: it runs again once that one ends.</summary>
    internal int CheckAgain;

    public async ValueTask DisposeAsync()
    {
        if (InFlight is { IsCompleted: false }) return; // a stuck probe may still use itself; let it be collected later
        foreach (var item in Run.Cast<object>().Prepend(Probe))
        {
            switch (item)
            {
                case IAsyncDisposable ad: await ad.DisposeAsync(); break;
                case IDisposable d: d.Dispose(); break;
            }
        }
    }
}
