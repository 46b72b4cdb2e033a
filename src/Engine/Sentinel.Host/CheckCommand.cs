using Sentinel.Engine.Plugins;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Spectre.Console;

namespace Sentinel.Host;

/// <summary>
/// `sentinel check`: the hand-written health_check.sh, done right. Runs each probe once from the durable state the engine
/// saved (a log-regex rule reads from its saved offset, so it reports what the engine would); no state is written.
/// </summary>
internal static class CheckCommand
{
    public static async Task<int> ExecuteAsync(string configPath, string[] names, CancellationToken cancellationToken)
    {
        Bootstrap.SizeConsole();
        using var loggers = Bootstrap.QuietLoggerFactory();
        // As `run` does: a rule whose plugin is not installed yet is shown as waiting (and counts as not healthy).
        var (catalog, config) = Bootstrap.LoadValid(configPath, loggers, allowMissingPlugins: true);
        using (catalog)
        {
            if (config is null) return Bootstrap.ExitConfigInvalid;
            var all = config.Rules;
            var known = all.Select(r => r.Name).Concat(config.Waiting.Select(w => w.Name)).ToList();
            var unknown = names.Where(n => !known.Contains(n)).ToList();
            if (unknown.Count > 0)
            {
                Console.Error.WriteLine($"error: no rule named {string.Join(", ", unknown.Select(u => $"'{u}'"))} (rules: {string.Join(", ", known)})");
                return Bootstrap.ExitConfigInvalid;
            }
            var waiting = config.Waiting.Where(w => names.Length == 0 || names.Contains(w.Name)).ToList();
            var selected = names.Length == 0 ? all : all.Where(r => names.Contains(r.Name)).ToList();
            var factory = new PluginActivator(loggers, TimeProvider.System);
            var saved = await Sentinel.Engine.State.SqliteStateStore.ReadProbeStatesAsync(Path.Combine(config.Engine.StateDirectory, "sentinel.db"), cancellationToken);
            var logger = loggers.CreateLogger("Sentinel.Check");
            var checks = await Task.WhenAll(selected.Select(async rule =>
            {
                try
                {
                    var probe = rule.Probe == SupervisedProbe.Registration ? SupervisedProbe.FromPidfile(rule.Supervise!, TimeProvider.System) : factory.Create(rule);
                    await using var runtime = new RuleRuntime(rule, probe, new MemoryProbeState(saved.GetValueOrDefault(rule.Name)));
                    return (rule, await ProbeRunner.RunAsync(runtime, TimeProvider.System, logger, cancellationToken));
                }
                catch (ConfigException ex)
                {
                    return (rule, new CheckRecord(ProbeStatus.Unhealthy, ex.Errors[0].Message, DateTimeOffset.UtcNow, TimeSpan.Zero));
                }
            }));

            // A probe may echo a secret (an Authorization header in a body): shown as *** here, as everywhere.
            var redactor = Sentinel.Engine.Api.Redactor.For(config, null);
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumn("Rule").AddColumn("Result").AddColumn(new TableColumn("Time").RightAligned()).AddColumn("Details");
            foreach (var (rule, check) in checks)
            {
                var (text, color) = check.Status switch
                {
                    ProbeStatus.Healthy => ("healthy", "green"),
                    ProbeStatus.Degraded => ("degraded", "yellow"),
                    _ => ("unhealthy", "red"),
                };
                table.AddRow(Markup.Escape(rule.Name), $"[{color}]{text}[/]", Duration.Format(check.Duration), Markup.Escape(redactor.Apply(check.Description ?? "")));
            }
            foreach (var w in waiting)
                table.AddRow(Markup.Escape(w.Name), "[yellow]not checked[/]", "", Markup.Escape(w.Reason));
            AnsiConsole.Write(table);
            var failed = checks.Count(c => !c.Item2.IsSuccess);
            var total = checks.Length + waiting.Count;
            Console.WriteLine(failed + waiting.Count == 0 ? $"all {total} healthy"
                : $"{failed} of {total} unhealthy" + (waiting.Count > 0 ? $", {waiting.Count} not checked (waiting for a plugin)" : ""));
            return failed + waiting.Count == 0 ? 0 : 1;
        }
    }
}
