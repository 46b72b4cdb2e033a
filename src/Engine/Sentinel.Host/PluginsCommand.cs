using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Spectre.Console;

namespace Sentinel.Host;

/// <summary>`sentinel plugins`: what can be used in rules, with every option's type, default and doc.</summary>
internal static class PluginsCommand
{
    public static int Execute(string configPath)
    {
        Bootstrap.SizeConsole();
        using var loggers = Bootstrap.QuietLoggerFactory();
        if (Bootstrap.LoadEngine(new ConfigLoader(), configPath) is not { } settings) return Bootstrap.ExitConfigInvalid;
        using var catalog = Bootstrap.LoadPlugins(settings, loggers);
        AnsiConsole.MarkupLine((settings.PluginDirectories.Count == 1 ? "Plugins folder: " : "Plugins folders (a later one's plugin replaces an earlier one's of the same name): ")
            + string.Join(", ", settings.PluginDirectories.Select(d => $"[bold]{Markup.Escape(d)}[/]")));
        foreach (var plugin in catalog.Plugins)
        {
            AnsiConsole.WriteLine();
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(plugin.Name)}[/] {Markup.Escape(plugin.Version)}");
            foreach (var type in plugin.Types)
            {
                AnsiConsole.MarkupLine($"  {type.Kind.ToString().ToLowerInvariant()} [green]{Markup.Escape(type.Name)}[/]{(type.Description is null ? "" : " — " + Markup.Escape(type.Description))}");
                var table = new Table().Border(TableBorder.Simple).AddColumn("option").AddColumn("type").AddColumn("default").AddColumn("description");
                var defaults = Activator.CreateInstance(type.OptionsType);
                foreach (var (key, prop) in YamlBinder.Properties(type.OptionsType).OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    var required = prop.GetCustomAttribute<RequiredAttribute>() is not null;
                    var secret = prop.GetCustomAttribute<SecretAttribute>() is not null;
                    var value = secret ? "(secret)" : Show(prop.GetValue(defaults));
                    table.AddRow(Markup.Escape(key), Markup.Escape(YamlBinder.Describe(prop.PropertyType).Replace("a ", "", StringComparison.Ordinal)),
                        required ? "[yellow]required[/]" : Markup.Escape(value), Markup.Escape(prop.GetCustomAttribute<DescriptionAttribute>()?.Description ?? ""));
                }
                AnsiConsole.Write(new Padder(table).PadLeft(4).PadTop(0).PadBottom(0));
            }
        }
        if (catalog.Plugins.Count == 0)
            AnsiConsole.MarkupLine("[yellow]No plugins found.[/] Build them with 'dotnet build src/Engine/Sentinel.Host', or drop a plugin folder into the plugins folder.");
        foreach (var e in catalog.Errors)
            AnsiConsole.MarkupLine($"[red]error[/]: {Markup.Escape(e.ToString())}");
        return catalog.Errors.Count == 0 ? 0 : 1;
    }

    private static string Show(object? v) => v switch
    {
        null => "",
        TimeSpan t => Duration.Format(t),
        bool b => b ? "true" : "false",
        string s => s,
        System.Collections.IDictionary d => d.Count == 0 ? "" : $"{d.Count} entries",
        System.Collections.IEnumerable e => string.Join(", ", e.Cast<object>()),
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
