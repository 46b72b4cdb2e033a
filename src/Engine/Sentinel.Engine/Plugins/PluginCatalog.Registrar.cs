using System.Collections.Immutable;
using System.Reflection;
using System.Text.RegularExpressions;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Plugins;

// What a plugin's Register sees: it adds probe and action types, checked (names, options types) before they are committed.
internal sealed partial class PluginCatalog
{
    private sealed partial class Registrar(string plugin, long generation) : IPluginRegistrar
    {
        public List<PluginTypeRegistration> Registrations { get; } = [];
        public List<string> Problems { get; } = [];

        public void AddProbe<TProbe, TOptions>(string name, string? description = null)
            where TProbe : class, IProbe where TOptions : class, new()
            => Add(PluginKind.Probe, name, typeof(TProbe), typeof(TOptions), description);

        public void AddAction<TAction, TOptions>(string name, string? description = null)
            where TAction : class, IAction where TOptions : class, new()
            => Add(PluginKind.Action, name, typeof(TAction), typeof(TOptions), description);

        private void Add(PluginKind kind, string name, Type impl, Type options, string? description)
        {
            if (name is null || !ValidName().IsMatch(name))
            {
                Problems.Add($"'{name}' is not a valid {kind.ToString().ToLowerInvariant()} name: use lower-case letters, digits and dashes, starting with a letter");
                return;
            }
            if (Registrations.Any(r => r.Kind == kind && r.Name == name))
            {
                Problems.Add($"{kind.ToString().ToLowerInvariant()} name '{name}' is registered twice by the plugin itself");
                return;
            }
            Registrations.Add(new PluginTypeRegistration(name, kind, impl, options, description, plugin, generation));
        }

        [GeneratedRegex("^[a-z][a-z0-9-]*$")]
        private static partial Regex ValidName();
    }

    // A subfolder (one level down, such as net10.0/) holding the plugin's own DLL.
    private static string? NestedBuild(string path, string folder)
        => System.IO.Directory.Exists(path)
            ? System.IO.Directory.GetDirectories(path).Select(d => Path.Combine(d, folder + ".dll")).FirstOrDefault(File.Exists)
            : null;
}
