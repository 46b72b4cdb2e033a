namespace Sentinel.Host;

internal static class ValidateCommand
{
    public static int Execute(string configPath, bool allowMissingPlugins = false)
    {
        using var loggers = Bootstrap.QuietLoggerFactory();
        var (catalog, result) = Bootstrap.Load(configPath, loggers, allowMissingPlugins);
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
            foreach (var w in config.Waiting) Console.Error.WriteLine($"warning: {w.Warning}");
            var waiting = config.Waiting.Count == 0 ? "" : $", {config.Waiting.Count} waiting for a plugin";
            Console.WriteLine($"{configPath}: valid: {config.Rules.Count + config.Waiting.Count} rule(s) in {config.Files.Count} file(s){waiting}, {catalog.Plugins.Count} plugin(s) loaded.");
            return 0;
        }
    }
}
