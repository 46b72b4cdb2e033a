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

var allowMissing = new Option<bool>("--allow-missing-plugins")
{
    Description = "A rule whose probe or action type no installed plugin provides is a warning, not an error (`sentinel run` starts without it and starts it when the plugin is dropped in)",
};
var validate = Make("validate", "Check the configuration and exit: 0 when valid, 2 when not (every error is printed as file:line:column).", allowMissing);
validate.SetAction(parse => ValidateCommand.Execute(parse.GetValue(config)!, parse.GetValue(allowMissing)));
root.Subcommands.Add(validate);

var rules = new Argument<string[]>("RULE") { Description = "Rules to check (default: all)", Arity = ArgumentArity.ZeroOrMore };
var check = new Command("check", "Run the probes of the given rules (or all) once, print a table, and exit 0 when all are healthy, 1 otherwise, 2 on a configuration error.");
check.Arguments.Add(rules);
check.SetAction((parse, ct) => CheckCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(rules) ?? [], ct));
root.Subcommands.Add(check);

var plugins = new Command("plugins", "List the loaded plugins, their probe and action types with options, defaults and docs, and load errors.");
plugins.SetAction(parse => PluginsCommand.Execute(parse.GetValue(config)!));
root.Subcommands.Add(plugins);

var schemaOutput = new Option<string?>("--output", "-o") { Description = "Write it to this file instead of standard output" };
var schema = Make("schema", "Print the configuration's JSON Schema (draft 2020-12), with the options of every plugin in the plugins folder: for editor completion and checks as you type.",
    schemaOutput);
schema.SetAction(parse => SchemaCommand.Execute(parse.GetValue(config)!, parse.GetValue(schemaOutput)));
root.Subcommands.Add(schema);

var channelName = new Argument<string>("CHANNEL") { Description = "The channel's name, as under channels: in the config" };
var notifyTest = new Command("notify-test", "Send a test message on a channel now and print what its server said; exit 0 when it was accepted, 1 when not.");
notifyTest.Arguments.Add(channelName);
notifyTest.SetAction((parse, ct) => NotifyTestCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(channelName)!, ct));
root.Subcommands.Add(notifyTest);

var incidentId = new Argument<long>("INCIDENT")
{
    Description = "The incident number (#12 in messages; GET /api/incidents lists them)",
    CustomParser = r =>
    {
        var text = r.Tokens.Count == 1 ? r.Tokens[0].Value.TrimStart('#') : "";
        if (long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id > 0) return id;
        r.AddError($"'{(r.Tokens.Count == 1 ? r.Tokens[0].Value : "")}' is not an incident number: give the number from the message (12 or #12)");
        return 0;
    },
};
var ack = new Command("ack", "Acknowledge an open incident in the running Sentinel: its escalations and reminders stop; the resolved message still comes.");
ack.Arguments.Add(incidentId);
ack.SetAction((parse, ct) => ControlCommands.AckAsync(parse.GetValue(config)!, parse.GetValue(incidentId), ct));
root.Subcommands.Add(ack);

var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of a table" };
var statusRule = new Argument<string?>("RULE") { Description = "One rule's whole story: state, service, last checks, open incident, channels", Arity = ArgumentArity.ZeroOrOne };
var status = new Command("status", "Every rule of the running Sentinel: state, since when, uptime over 24h/7d/30d, last message (or one RULE in full). "
    + "When it does not answer, the status.json it last wrote. Exit 0 when no rule is down, 1 when one is, 2 for an unknown rule, 3 when there is nothing to read.");
status.Arguments.Add(statusRule);
status.Options.Add(json);
status.SetAction((parse, ct) => StatusCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(statusRule), parse.GetValue(json), ct));
root.Subcommands.Add(status);

var historyRule = new Argument<string>("RULE") { Description = "The rule's name" };
var since = new Option<string>("--since") { Description = "How far back (e.g. 1h, 24h, 7d)", DefaultValueFactory = _ => "24h" };
var limit = new Option<int>("--limit", "-n") { Description = "At most this many checks (the newest)", DefaultValueFactory = _ => 50 };
var hourly = new Option<bool>("--hourly") { Description = "Hourly counts (checks, failures, downtime, durations) instead of single checks" };
var history = Make("history", "A rule's past checks (or hourly counts) from the running Sentinel, or from state/history.db when it is not running.",
    historyRule, since, limit, hourly, json);
history.SetAction((parse, ct) => HistoryCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(historyRule)!, parse.GetValue(since)!, parse.GetValue(limit),
    parse.GetValue(hourly), parse.GetValue(json), ct));
root.Subcommands.Add(history);

var logsRule = new Argument<string>("RULE") { Description = "The rule's name" };
var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing what comes, until Ctrl+C (across log rotations)" };
var logLines = new Option<int>("--lines", "-n") { Description = "How many lines (or checks and events) to print first", DefaultValueFactory = _ => 50 };
var logsSince = new Option<string>("--since") { Description = "Checks and events this far back (e.g. 10m, 2h)", DefaultValueFactory = _ => "1h" };
var logChecks = new Option<bool>("--checks") { Description = "For a supervised rule too: its checks and events instead of the service's output" };
var logs = Make("logs", "A supervised service's output (from its rotated files too), or for any rule its checks and events from the running Sentinel; like `supervisorctl tail`.",
    logsRule, follow, logLines, logsSince, logChecks);
logs.SetAction((parse, ct) => LogsCommand.ExecuteAsync(parse.GetValue(config)!, parse.GetValue(logsRule)!, parse.GetValue(follow), parse.GetValue(logLines),
    parse.GetValue(logsSince)!, parse.GetValue(logChecks), ct));
root.Subcommands.Add(logs);

foreach (var (name, description, call) in new (string, string, Func<string, string, CancellationToken, Task<int>>)[]
{
    ("pause", "Pause a rule in the running Sentinel: not checked, not remediated, its open incident resolved as paused.", ControlCommands.PauseAsync),
    ("resume", "Resume a paused rule in the running Sentinel.", ControlCommands.ResumeAsync),
    ("run-now", "Check a rule now in the running Sentinel (outside its schedule; its state and history count it) and print the result.", ControlCommands.RunAsync),
    ("remediate", "Run a rule's remediation once now in the running Sentinel, whatever its backoff and budget say.", ControlCommands.RemediateAsync),
    ("stop", "Stop a rule's supervised service and hold it stopped: not restarted, not alerted for (its rule is paused), also after a restart of Sentinel, until `sentinel start`.",
        (c, r, ct) => ControlCommands.ServiceAsync(c, "stop", r, ct)),
    ("start", "Start a rule's supervised service (a fresh start: no backoff, the budget untouched) and resume its rule.", (c, r, ct) => ControlCommands.ServiceAsync(c, "start", r, ct)),
    ("restart", "Restart a rule's supervised service now (outside its restart budget).", (c, r, ct) => ControlCommands.ServiceAsync(c, "restart", r, ct)),
})
{
    var ruleName = new Argument<string>("RULE") { Description = "The rule's name" };
    var command = new Command(name, description + " Needs the API token (see docs/api.md).");
    command.Arguments.Add(ruleName);
    command.SetAction((parse, ct) => call(parse.GetValue(config)!, parse.GetValue(ruleName)!, ct));
    root.Subcommands.Add(command);
}

var shell = new Argument<string>("SHELL") { Description = "bash or zsh" };
var completion = Make("completion", "Print the shell completion script (commands, options, and the rule and channel names of the config): "
    + "`sentinel completion bash > /etc/bash_completion.d/sentinel`, or `source <(sentinel completion zsh)` in ~/.zshrc.", shell);
completion.SetAction(parse => CommandTreeDocs.Completion(root, parse.GetValue(shell)!));
root.Subcommands.Add(completion);

var man = new Command("man", "Print the manual page sentinel(1) in roff, made from these commands: `sentinel man | man -l -`.");
man.SetAction(_ => CommandTreeDocs.Man(root));
root.Subcommands.Add(man);

// Used by the completion script at each Tab: the rule or channel names of the config, from its YAML alone.
var namesOf = new Argument<string>("WHAT") { Description = "rules or channels" };
var names = Make("__names", "The names under rules: or channels: of the config, one a line.", namesOf);
names.Hidden = true;
names.SetAction(parse => CommandTreeDocs.Names(parse.GetValue(config)!, parse.GetValue(namesOf)!));
root.Subcommands.Add(names);

static Command Make(string name, string description, params Symbol[] parts)
{
    var command = new Command(name, description);
    foreach (var part in parts)
    {
        if (part is Argument argument) command.Arguments.Add(argument);
        else if (part is Option option) command.Options.Add(option);
    }
    return command;
}

// A usage error exits 2 (1 means "a rule is down" to `status` and `check`), with what was wrong and, for an unknown
// command, the commands there are.
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // An unknown word is the mistake to name; "Required command was not provided" only restates it.
    var unknownWord = parsed.CommandResult.Command == root && parsed.UnmatchedTokens.Count > 0;
    foreach (var e in parsed.Errors.Where(e => !(unknownWord && e.Message.StartsWith("Required command", StringComparison.Ordinal))))
        Console.Error.WriteLine("error: " + e.Message);
    if (parsed.CommandResult.Command == root && parsed.UnmatchedTokens.Count > 0)
        Console.Error.WriteLine("commands: " + string.Join(", ", root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name)));
    Console.Error.WriteLine($"Run 'sentinel {(parsed.CommandResult.Command == root ? "" : parsed.CommandResult.Command.Name + " ")}--help' for usage.");
    return 2;
}

// `run` handles SIGTERM/Ctrl+C itself (the host flushes state before exiting), so the parser must not.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
