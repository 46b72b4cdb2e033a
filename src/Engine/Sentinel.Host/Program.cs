using System.CommandLine;
using Sentinel.Host;

var config = new Option<string>("--config", "-c")
{
    Description = "The configuration file (default: $SENTINEL_CONFIG, else config/sentinel.yaml)",
    Recursive = true,
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SENTINEL_CONFIG") is { Length: > 0 } env ? env : Path.Combine("config", "sentinel.yaml"),
};

var root = new RootCommand("Sentinel: health checks, self-healing and alerting for the services on one box.");
root.Options.Add(config);

var run = new Command("run", "Run the engine: load plugins, schedule the rules, serve /health and /api/status. Ctrl+C or SIGTERM stops it cleanly.");
run.SetAction((parse, ct) => RunCommand.ExecuteAsync(parse.GetValue(config)!, ct));
root.Subcommands.Add(run);

var validate = new Command("validate", "Check the configuration and exit: 0 when valid, 2 when not (every error is printed as file:line:column).");
validate.SetAction(parse => ValidateCommand.Execute(parse.GetValue(config)!));
root.Subcommands.Add(validate);

var rules = new Argument<string[]>("RULE") { Description = "Rules to check (default: all)", Arity = ArgumentArity.ZeroOrMore };
var check = new Command("check", "Run the probes of the given rules (or all) once, print a table, and exit 0 when all are healthy, 1 otherwise, 2 on a configuration error.");
check.Arguments.Add(rules);
check.SetAction((parse, ct) => CheckCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(rules) ?? [], ct));
root.Subcommands.Add(check);

var plugins = new Command("plugins", "List the loaded plugins, their probe and action types with options, defaults and docs, and load errors.");
plugins.SetAction(parse => PluginsCommand.Execute(parse.GetValue(config)!));
root.Subcommands.Add(plugins);

var channelName = new Argument<string>("CHANNEL") { Description = "The channel's name, as under channels: in the config" };
var notifyTest = new Command("notify-test", "Send a test message on a channel now and print what its server said; exit 0 when it was accepted, 1 when not.");
notifyTest.Arguments.Add(channelName);
notifyTest.SetAction((parse, ct) => NotifyTestCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(channelName)!, ct));
root.Subcommands.Add(notifyTest);

var incidentId = new Argument<long>("INCIDENT") { Description = "The incident number (#12 in messages; GET /api/incidents lists them)" };
var ack = new Command("ack", "Acknowledge an open incident in the running Sentinel: its escalations and reminders stop; the resolved message still comes.");
ack.Arguments.Add(incidentId);
ack.SetAction((parse, ct) => AckCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(incidentId), ct));
root.Subcommands.Add(ack);

// `run` handles SIGTERM/Ctrl+C itself (the host flushes state before exiting), so the parser must not.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
