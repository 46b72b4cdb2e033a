namespace Sentinel.Engine.Plugins;

internal sealed record PluginInfo(string Name, string Path, string Version, IReadOnlyList<PluginTypeRegistration> Types, DateTimeOffset LoadedAt);

internal sealed record PluginLoadError(string Plugin, string Path, string Reason, DateTimeOffset At)
{
    public override string ToString() => $"plugin '{Plugin}' ({Path}): {Reason}";
}
