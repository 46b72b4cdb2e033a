using Sentinel.Abstractions;

namespace Sentinel.Engine.Model;

/// <summary>A rule's probe state in memory: what the engine persists (<see cref="Snapshot"/>) and <c>sentinel check</c> reads.</summary>
internal sealed class MemoryProbeState : IProbeState
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _values = new(StringComparer.Ordinal);

    /// <summary>Creates an empty state, or one holding <paramref name="values"/>.</summary>
    public MemoryProbeState(IEnumerable<KeyValuePair<string, string>>? values = null)
    {
        foreach (var (k, v) in values ?? []) _values[k] = v;
    }

    /// <summary>Increments on every change, so the engine can tell whether to persist.</summary>
    public int Version { get; private set; }

    /// <inheritdoc />
    public string? Get(string key) => _values.TryGetValue(key, out var v) ? v : null;

    /// <inheritdoc />
    public void Set(string key, string? value)
    {
        var changed = value is null ? _values.TryRemove(key, out _) : !_values.TryGetValue(key, out var old) || old != value;
        if (value is not null) _values[key] = value;
        if (changed) Version++;
    }

    /// <summary>A copy of every value.</summary>
    public IReadOnlyDictionary<string, string> Snapshot() => new Dictionary<string, string>(_values, StringComparer.Ordinal);
}
