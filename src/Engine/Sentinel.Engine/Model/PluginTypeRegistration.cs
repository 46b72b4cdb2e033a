namespace Sentinel.Engine.Model;

internal enum PluginKind { Probe, Action }

/// <summary>
/// A probe or action type a plugin registered, as the definitions name it. <see cref="Generation"/> changes on every
/// (re)load. Part of the model because every definition names its type; the catalog (Plugins/) makes them.
/// </summary>
internal sealed record PluginTypeRegistration(
    string Name, PluginKind Kind, Type ImplementationType, Type OptionsType, string? Description, string Plugin, long Generation);
