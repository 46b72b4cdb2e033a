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
            if (RunCommand.Refusal(config.Engine) is { } refused)
            {
                Console.Error.WriteLine(refused.Replace("error: ", "error: valid, but `sentinel run` would refuse it: ", StringComparison.Ordinal));
                return Bootstrap.ExitConfigInvalid;
            }
            Console.WriteLine($"{configPath}: valid: {config.Rules.Count} rule(s) in {config.Files.Count} file(s), {catalog.Plugins.Count} plugin(s) loaded.");
            return 0;
        }
    }
}
