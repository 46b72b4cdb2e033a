namespace Sentinel.Engine.Configuration;

/// <summary>Where each bound object and each of its keys came from, so later checks can point at the line.</summary>
internal sealed class BindingLocations
{
    private readonly Dictionary<object, Dictionary<string, SourceLocation>> _keys = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<object, SourceLocation> _objects = new(ReferenceEqualityComparer.Instance);

    internal void SetObject(object o, SourceLocation at) => _objects[o] = at;

    internal void SetKey(object o, string key, SourceLocation at)
    {
        if (!_keys.TryGetValue(o, out var map)) _keys[o] = map = new(StringComparer.Ordinal);
        map[key] = at;
    }

    /// <summary>The location of <paramref name="key"/>'s value in <paramref name="o"/>, else of <paramref name="o"/> itself.</summary>
    public SourceLocation Of(object o, string? key = null)
    {
        if (key is not null && _keys.TryGetValue(o, out var map) && map.TryGetValue(key, out var at)) return at;
        return _objects.TryGetValue(o, out var self) ? self : default;
    }

    public bool Has(object o, string key) => _keys.TryGetValue(o, out var map) && map.ContainsKey(key);
}
