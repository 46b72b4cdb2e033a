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

    private ProbeCall? _call;
    private ProbeContext? _context;

    /// <summary>The rule's probe call, used again check after check; busy while an abandoned probe still runs.</summary>
    internal ProbeCall CallFor(TimeProvider time) => _call ??= new ProbeCall(Check, time);

    /// <summary>What the probe is given: the same at every check while the logger and clock are.</summary>
    internal ProbeContext ContextFor(TimeProvider time, Microsoft.Extensions.Logging.ILogger logger)
        => _context is { } c && ReferenceEquals(c.Logger, logger) && ReferenceEquals(c.TimeProvider, time)
            ? c
            : _context = new ProbeContext { RuleName = Definition.Name, TimeProvider = time, Logger = logger, Timeout = Definition.Timeout, State = State, Service = Service };

    /// <summary>When the latest check started (a stuck probe's age).</summary>
    internal DateTimeOffset InFlightSince { get; set; }

    /// <summary>1 when a check was asked for (a ping, an exit) while one ran: it runs again once that one ends.</summary>
    internal int CheckAgain;

    public async ValueTask DisposeAsync()
    {
        if (_call is { Busy: true }) return; // a stuck probe may still use itself; let it be collected later
        _call?.Dispose();
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
