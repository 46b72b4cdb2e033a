using Sentinel.Engine.Configuration;

namespace Sentinel.Host;

/// <summary>`sentinel schema`: the configuration's JSON Schema, with the with: blocks of every plugin in the plugins folder.</summary>
internal static class SchemaCommand
{
    public static int Execute(string configPath, string? output)
    {
        using var loggers = Bootstrap.QuietLoggerFactory();
        if (Bootstrap.LoadEngine(new ConfigLoader(), configPath) is not { } settings) return Bootstrap.ExitConfigInvalid;
        using var catalog = Bootstrap.LoadPlugins(settings, loggers);
        var text = ConfigSchema.ToText(catalog);
        if (output is null) Console.Write(text);
        else
        {
            File.WriteAllText(output, text);
            Console.Error.WriteLine($"wrote {output}: point your editor's YAML support at it (docs/configuration.md#editor-support)");
        }
        return 0;
    }
}
