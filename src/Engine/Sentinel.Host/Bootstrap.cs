using Microsoft.Extensions.Logging;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;

namespace Sentinel.Host;

/// <summary>What every command does first: read the engine section, load the plugins, load the rules.</summary>
internal static class Bootstrap
{
    public const int ExitConfigInvalid = 2;

    /// <summary>
    /// Tables are as wide as $COLUMNS, or 160 when the output goes to a pipe or file (not wrapped for grep); a pipe or
    /// file gets no escape codes at all, whatever $TERM says (Spectre.Console wrote bold into them under TERM=xterm).
    /// </summary>
    public static void SizeConsole()
    {
        if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Capabilities.Ansi = false;
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out var columns) && columns > 20)
            Spectre.Console.AnsiConsole.Profile.Width = columns;
        else if (Console.IsOutputRedirected)
            Spectre.Console.AnsiConsole.Profile.Width = 160;
    }

    /// <summary>Reads the engine section (needed before logging and plugins); prints the errors when it is invalid.</summary>
    public static EngineSettings? LoadEngine(ConfigLoader loader, string configPath)
    {
        var (settings, errors) = loader.LoadEngine(configPath);
        if (settings is null) PrintErrors(errors);
        return settings;
    }

    public static PluginCatalog LoadPlugins(EngineSettings settings, ILoggerFactory loggerFactory)
    {
        var catalog = new PluginCatalog(settings.PluginDirectories, loggerFactory.CreateLogger("Sentinel.Plugins"), builtIn: [new Sentinel.Engine.BuiltIn.EngineProbesPlugin()]);
        catalog.LoadAll();
        return catalog;
    }

    /// <summary>Engine section, plugins and rules, for the commands that only read them.</summary>
    public static (PluginCatalog? Catalog, ConfigLoadResult? Result) Load(string configPath, ILoggerFactory loggerFactory, bool allowMissingPlugins = false)
    {
        var loader = new ConfigLoader();
        if (LoadEngine(loader, configPath) is not { } settings) return (null, null);
        var catalog = LoadPlugins(settings, loggerFactory);
        return (catalog, loader.Load(configPath, catalog, allowMissingPlugins));
    }

    /// <summary>As <see cref="Load"/>, printing the errors: the config is null when the commands must exit with <see cref="ExitConfigInvalid"/>.</summary>
    public static (PluginCatalog? Catalog, SentinelConfig? Config) LoadValid(string configPath, ILoggerFactory loggerFactory, bool allowMissingPlugins = false)
    {
        var (catalog, result) = Load(configPath, loggerFactory, allowMissingPlugins);
        if (result is { IsValid: false }) PrintErrors(result.Errors);
        return (catalog, result is { IsValid: true } ? result.Config : null);
    }

    public static void PrintErrors(IReadOnlyList<ConfigError> errors)
    {
        var err = Console.Error;
        foreach (var e in errors) err.WriteLine($"error: {e}");
        err.WriteLine(errors.Count == 1 ? "1 error: the configuration was not loaded." : $"{errors.Count} errors: the configuration was not loaded.");
    }

    /// <summary>Warnings and errors only, to stderr, so command output stays clean for scripts.</summary>
    public static ILoggerFactory QuietLoggerFactory() => LoggerFactory.Create(b => b
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(o => o.SingleLine = true)
        .AddFilter((category, level) => level >= LogLevel.Warning && category != "Sentinel.Plugins"));

    public static void PrintPluginErrors(PluginCatalog catalog)
    {
        foreach (var e in catalog.Errors)
            Console.Error.WriteLine($"warning: {e}");
    }
}
