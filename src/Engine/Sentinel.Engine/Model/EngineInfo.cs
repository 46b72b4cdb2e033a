using System.Reflection;

namespace Sentinel.Engine.Model;

/// <summary>What every part may say of the engine itself.</summary>
internal static class EngineInfo
{
    /// <summary>The engine's version (without the commit), as messages, pings, metrics and status show it.</summary>
    public static string Version { get; } = typeof(EngineInfo).Assembly
        .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
