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

var run = new Command("run", "Run the engine: load plugins, schedule the rules, serve the status page, /health, /metrics and the API. Ctrl+C or SIGTERM stops it cleanly.");
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
ack.SetAction((parse, ct) => ControlCommands.AckAsync(parse.GetValue(config)!, parse.GetValue(incidentId), ct));
root.Subcommands.Add(ack);

var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of a table" };
var status = new Command("status", "Every rule of the running Sentinel: state, since when, uptime over 24h/7d/30d, last message. "
    + "When it does not answer, the status.json it last wrote. Exit 0 when no rule is down, 1 when one is, 3 when there is nothing to read.");
status.Options.Add(json);
status.SetAction((parse, ct) => StatusCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(json), ct));
root.Subcommands.Add(status);

var historyRule = new Argument<string>("RULE") { Description = "The rule's name" };
var since = new Option<string>("--since") { Description = "How far back (e.g. 1h, 24h, 7d)", DefaultValueFactory = _ => "24h" };
var limit = new Option<int>("--limit", "-n") { Description = "At most this many checks (the newest)", DefaultValueFactory = _ => 50 };
var hourly = new Option<bool>("--hourly") { Description = "Hourly counts (checks, failures, downtime, durations) instead of single checks" };
var history = new Command("history", "A rule's past checks (or hourly counts) from the running Sentinel, or from state/history.db when it is not running.");
history.Arguments.Add(historyRule);
history.Options.Add(since);
history.Options.Add(limit);
history.Options.Add(hourly);
history.Options.Add(json);
history.SetAction((parse, ct) => HistoryCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(historyRule)!, parse.GetValue(since)!, parse.GetValue(limit),
    parse.GetValue(hourly), parse.GetValue(json), ct));
root.Subcommands.Add(history);

foreach (var (name, description, call) in new (string, string, Func<string, string, CancellationToken, Task<int>>)[]
{
    ("pause", "Pause a rule in the running Sentinel: not checked, not remediated, its open incident resolved as paused.", ControlCommands.PauseAsync),
    ("resume", "Resume a paused rule in the running Sentinel.", ControlCommands.ResumeAsync),
    ("run-now", "Check a rule now in the running Sentinel (outside its schedule; its state and history count it) and print the result.", ControlCommands.RunAsync),
    ("remediate", "Run a rule's remediation once now in the running Sentinel, whatever its backoff and budget say.", ControlCommands.RemediateAsync),
})
{
    var ruleName = new Argument<string>("RULE") { Description = "The rule's name" };
    var command = new Command(name, description + " Needs the API token (see docs/api.md).");
    command.Arguments.Add(ruleName);
    command.SetAction((parse, ct) => call(parse.GetValue(config)!, parse.GetValue(ruleName)!, ct));
    root.Subcommands.Add(command);
}

// `run` handles SIGTERM/Ctrl+C itself (the host flushes state before exiting), so the parser must not.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
