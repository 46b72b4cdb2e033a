namespace Sentinel.Engine.Plugins;

internal enum PluginKind { Probe, Action }

/// <summary>A probe or action type a plugin registered. <see cref="Generation"/> changes on every (re)load.</summary>
internal sealed record PluginTypeRegistration(
    string Name, PluginKind Kind, Type ImplementationType, Type OptionsType, string? Description, string Plugin, long Generation);

internal sealed record PluginInfo(string Name, string Path, string Version, IReadOnlyList<PluginTypeRegistration> Types, DateTimeOffset LoadedAt);

internal sealed record PluginLoadError(string Plugin, string Path, string Reason, DateTimeOffset At)
{
    public override string ToString() => $"plugin '{Plugin}' ({Path}): {Reason}";
}
