namespace Sentinel.Host;

internal static class ValidateCommand
{
    public static int Execute(string configPath)
    {
        using var loggers = Bootstrap.QuietLoggerFactory();
        var (catalog, result) = Bootstrap.Load(configPath, loggers);
        using (catalog)
        {
            if (catalog is null || result is null) return Bootstrap.ExitConfigInvalid;
            Bootstrap.PrintPluginErrors(catalog);
            if (!result.IsValid)
            {
                Bootstrap.PrintErrors(result.Errors);
                return Bootstrap.ExitConfigInvalid;
            }
            var config = result.Config!;
            Console.WriteLine($"{configPath}: valid: {config.Rules.Count} rule(s) in {config.Files.Count} file(s), {catalog.Plugins.Count} plugin(s) loaded.");
            return 0;
        }
    }
}
