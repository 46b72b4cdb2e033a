using System.Collections.Concurrent;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Model;

/// <summary>A rule's probe state in memory: what the engine persists (<see cref="Snapshot"/>) and <c>sentinel check</c> reads.</summary>
internal sealed class MemoryProbeState : IProbeState
{
    // Made at the first value: most probes keep none, and an empty concurrent dictionary is ~0.5 KB (5 MB at 10,000 rules).
    private ConcurrentDictionary<string, string>? _values;

    /// <summary>Creates an empty state, or one holding <paramref name="values"/>.</summary>
    public MemoryProbeState(IEnumerable<KeyValuePair<string, string>>? values = null)
    {
        foreach (var (k, v) in values ?? []) Values[k] = v;
    }

    private ConcurrentDictionary<string, string> Values
        => _values ?? Interlocked.CompareExchange(ref _values, new(StringComparer.Ordinal), null) ?? _values;

    /// <summary>Increments on every change, so the engine can tell whether to persist.</summary>
    public int Version { get; private set; }

    /// <inheritdoc />
    public string? Get(string key) => _values is { } values && values.TryGetValue(key, out var v) ? v : null;

    /// <inheritdoc />
    public void Set(string key, string? value)
    {
        if (value is null && _values is null) return;
        var changed = value is null ? Values.TryRemove(key, out _) : !Values.TryGetValue(key, out var old) || old != value;
        if (value is not null) Values[key] = value;
        if (changed) Version++;
    }

    /// <summary>A copy of every value.</summary>
    public IReadOnlyDictionary<string, string> Snapshot()
        => _values is { } values ? new Dictionary<string, string>(values, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
}
