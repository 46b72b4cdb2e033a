using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;
using Sentinel.Engine.Plugins;

namespace Sentinel.Engine.Model;

// The validated, resolved configuration the engine runs (Configuration/ makes it from the YAML specs), and the parts
// of the YAML shape that are the model as they are written (a supervised service, its restart mode, alert kinds).
/// <summary>A resolved maintenance window.</summary>
internal sealed class MaintenanceWindow(string name, IReadOnlyList<string>? rules, Quartz.CronExpression? cron, TimeSpan duration, DateTimeOffset? start, DateTimeOffset? end)
{
    public string Name { get; } = name;

    /// <summary>Whether the window covers the rule; naming a rule written with node: all covers it on every node (NAME@node).</summary>
    public bool Covers(string rule) => rules is null || rules.Contains(rule) || (rule.IndexOf('@') is > 0 and var at && rules.Contains(rule[..at]));

    /// <summary>The end of the window that is open at <paramref name="now"/>, or null when none is.</summary>
    public DateTimeOffset? OpenUntil(DateTimeOffset now)
    {
        if (start is { } s && end is { } e) return now >= s && now < e ? e : null;
        // The first start after (now - duration) that is not after now opens a window that is still open.
        var began = cron!.GetNextValidTimeAfter(now - duration - TimeSpan.FromSeconds(1));
        return began is { } b && b <= now && now < b + duration ? b + duration : null;
    }
}

internal enum AlertOn { Down, GaveUp, RemediationFailed, RestartRate, Exited }

/// <summary>With alert-on: [restart-rate]: alert (once per window) when a rule is remediated more than max times within the window.</summary>
internal sealed class RestartRateSpec
{
    [Range(1, 10_000)] public int Max { get; set; } = 3;
    public TimeSpan Within { get; set; } = TimeSpan.FromHours(1);
}

internal enum LogLevelName { Trace, Debug, Information, Warning, Error }
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<RestartMode>))]
internal enum RestartMode { Always, OnFailure, Never }

internal enum StopSignal { Term, Int, Hup, Quit, Kill, Usr1, Usr2 }

/// <summary>A service the rule owns: started, watched and restarted by Sentinel.</summary>
internal sealed class SuperviseSpec : IValidatableObject
{
    [Description("The program and its arguments, one item each (no shell unless shell: true).")]
    public List<string> Command { get; set; } = [];

    [Description("Run the command through /bin/sh -c: then 'command' is one line of shell script.")]
    public bool Shell { get; set; }

    [Sentinel.Abstractions.FilePath, Description("Working directory, relative to the config file's folder.")]
    public string? Cwd { get; set; }

    public Dictionary<string, string> Env { get; set; } = [];

    [Sentinel.Abstractions.FilePath, Description("File the service's stdout is appended to. Default: <logs>/<rule>.log.")]
    public string? Stdout { get; set; }

    [Sentinel.Abstractions.FilePath, Description("File the service's stderr is appended to. Default: the stdout file.")]
    public string? Stderr { get; set; }

    [Description("Rotate a log file when it grows past this size.")]
    public Sentinel.Abstractions.ByteSize LogMaxSize { get; set; } = Sentinel.Abstractions.ByteSize.Parse("10MB");

    [Range(0, 100), Description("Rotated files kept (<file>.1 is the newest).")]
    public int LogMaxFiles { get; set; } = 5;

    [Sentinel.Abstractions.FilePath, Description("Where the service's PID is written. Default: <state>/supervise/<rule>.pid.")]
    public string? Pidfile { get; set; }

    public StopSignal StopSignal { get; set; } = StopSignal.Term;

    [Description("How long a stop waits after stop-signal before KILL.")]
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(10);

    [Description("always: restart on any exit; on-failure: only on a non-zero exit or a signal; never.")]
    public RestartMode Restart { get; set; } = RestartMode.Always;

    [Description("Stop the service when Sentinel shuts down. By default it keeps running and is adopted at the next start.")]
    public bool StopOnExit { get; set; }

    [Description("A start counts as successful once the service has run this long.")]
    public TimeSpan StartPeriod { get; set; } = TimeSpan.FromSeconds(1);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Command.Count == 0 || string.IsNullOrWhiteSpace(Command[0]))
            yield return new("set command to the program and its arguments, e.g. [python3, bot.py]", [nameof(Command)]);
        else if (Shell && Command.Count > 1)
            yield return new("with shell: true, write command as one line of shell script", [nameof(Command)]);
        if (Cwd is not null && !Directory.Exists(Cwd)) yield return new($"cwd {Cwd} is not a directory", [nameof(Cwd)]);
        if (StopTimeout < TimeSpan.Zero) yield return new("stop-timeout cannot be negative", [nameof(StopTimeout)]);
    }
}

// The validated, resolved configuration the engine runs.

internal sealed record EngineSettings(
    string ConfigFile,
    FolderList PluginDirectories,
    string StateDirectory,
    string LogDirectory,
    LogLevelName LogLevel,
    int LogRetainedFiles,
    bool HttpEnabled,
    string HttpListen,
    int MaxConcurrency,
    TimeSpan StateFlushInterval,
    bool WatchConfig,
    bool WatchPlugins)
{
    /// <summary>engine.http.token as written (after ${ENV} expansion); null when not set.</summary>
    public string? HttpToken { get; init; }
    public HistorySettings History { get; init; } = HistorySettings.Default;
    /// <summary>Cluster mode (engine.cluster); null on a single box.</summary>
    public ClusterSettings? Cluster { get; init; }
}

/// <summary>engine.cluster resolved: the shared database, this node's name, how often it checks in.</summary>
internal sealed record ClusterSettings(string ConnectionString, string Node, TimeSpan CheckinInterval)
{
    /// <summary>Where the other nodes reach this node's API (engine.cluster.advertise; null: from engine.http.listen).</summary>
    public Uri? Advertise { get; init; }

    /// <summary>Never the connection string: it holds the password.</summary>
    public override string ToString() => $"cluster node {Node}";
}

internal sealed record RuleDefinition
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    public TimeSpan? Every { get; init; }
    /// <summary>The cron expression in Quartz form (seconds first).</summary>
    public string? Cron { get; init; }
    public string? CronText { get; init; }
    public required TimeSpan Timeout { get; init; }
    public required PluginTypeRegistration Probe { get; init; }
    public required object ProbeOptions { get; init; }
    public IReadOnlyList<Condition> Conditions { get; init; } = [];
    public required int FailureThreshold { get; init; }
    public required int SuccessThreshold { get; init; }
    public bool Paused { get; init; }
    /// <summary>The remediation actions, run in order on each attempt.</summary>
    public IReadOnlyList<ActionDefinition> Remediate { get; init; } = [];
    /// <summary>Actions run after every check.</summary>
    public IReadOnlyList<ActionDefinition> Run { get; init; } = [];
    /// <summary>The service the rule owns, when it supervises one (paths resolved).</summary>
    public SuperviseSpec? Supervise { get; init; }
    public RemediationPolicy Policy { get; init; } = RemediationPolicy.Default;
    public IReadOnlyList<string> DependsOn { get; init; } = [];
    public IReadOnlyList<NotifyTarget> Notify { get; init; } = [];
    public TimeSpan? ReminderInterval { get; init; }
    public bool SendResolved { get; init; } = true;
    /// <summary>Outages shorter than this are not told; 0 (the default) tells every one.</summary>
    public TimeSpan MinDown { get; init; }
    public IReadOnlySet<AlertOn> AlertOn { get; init; } = new HashSet<AlertOn> { Model.AlertOn.Down, Model.AlertOn.GaveUp };
    public RestartRateSpec RestartRate { get; init; } = new();
    public ActionDefinition? Ping { get; init; }
    public TimeSpan PingEvery { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>The node that runs the rule in cluster mode (node:); null: by its probe's kind.</summary>
    public string? Node { get; init; }
    /// <summary>In cluster mode, the rule written with node: all of which this is this node's instance (named NAME@node).</summary>
    public string? AllNodesOf { get; init; }
    /// <summary>Its probe checks what any node can reach (<see cref="Sentinel.Abstractions.ClusterWideAttribute"/>) and it supervises nothing.</summary>
    public bool ClusterWide { get; init; }

    /// <summary>Whether this node runs the rule: on one box every rule; in a cluster, all but those naming another node.</summary>
    public bool RunsOn(ClusterSettings? cluster) => cluster is null || Node is null || Node == cluster.Node;
    public SourceLocation Location { get; init; }
    /// <summary>Changes whenever anything that affects how the rule runs changes (its YAML or its plugin's code).</summary>
    public required string Fingerprint { get; init; }

    public string Schedule => Every is { } e ? "every " + Duration.Format(e) : "cron " + CronText;
}

internal sealed record ActionDefinition(PluginTypeRegistration Type, object Options, SourceLocation Location);

/// <summary>Backoff, budget and grace of a rule's remediation (see docs/remediation.md).</summary>
internal sealed record RemediationPolicy(
    TimeSpan BackoffInitial, double BackoffFactor, TimeSpan BackoffMax, double Jitter,
    int BudgetMax, TimeSpan BudgetWithin, TimeSpan RetryAfter, TimeSpan StableAfter, TimeSpan Grace)
{
    public static RemediationPolicy Default { get; } = From(null, null, null);

    public static RemediationPolicy From(BackoffSpec? backoff, RestartBudgetSpec? budget, TimeSpan? grace)
    {
        backoff ??= new BackoffSpec();
        budget ??= new RestartBudgetSpec();
        return new(backoff.Initial, backoff.Factor, backoff.Max, backoff.Jitter,
            budget.Max, budget.Within, budget.RetryAfter ?? backoff.Max, budget.StableAfter, grace ?? TimeSpan.FromSeconds(30));
    }
}

internal sealed record NotifyTarget(string Channel, TimeSpan After);

internal sealed record ChannelDefinition(string Name, PluginTypeRegistration Type, object Options, string? Fallback, TimeSpan FailoverAfter,
    TimeSpan GiveUpAfter, TemplateSpec? Template, SourceLocation Location);

internal sealed record HeartbeatDefinition(TimeSpan Every, IReadOnlyList<ActionDefinition> To);

internal sealed record SentinelConfig(EngineSettings Engine, IReadOnlyList<RuleDefinition> Rules, IReadOnlyList<string> Files)
{
    public HeartbeatDefinition? Heartbeat { get; init; }
    public IReadOnlyList<ChannelDefinition> Channels { get; init; } = [];
    public IReadOnlyList<MaintenanceWindow> Maintenance { get; init; } = [];
    public TimeSpan GroupWait { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The channels told of Sentinel's own trouble (notifications.engine, or its default).</summary>
    public IReadOnlyList<string> EngineChannels { get; init; } = [];
    /// <summary>Rules that name a probe or action type no loaded plugin provides (yet): they start when one does.</summary>
    public IReadOnlyList<WaitingRule> Waiting { get; init; } = [];
}

/// <summary>A probe or action type a rule uses that no loaded plugin provides.</summary>
internal sealed record MissingPlugin(string Key, string Noun, string Type, SourceLocation Location, string Hint)
{
    public override string ToString() => $"{Noun} '{Type}'";
}

/// <summary>
/// A rule that is valid but for types no plugin provides yet (loaded with <c>allowMissingPlugins</c>): it is shown as
/// waiting, keeps its state and open incident, and starts when the plugin is dropped in.
/// </summary>
internal sealed record WaitingRule(string Name, string? Description, string Schedule, IReadOnlyList<MissingPlugin> Missing, SourceLocation Location)
{
    public string Reason => "waiting for a plugin that provides " + string.Join(" and ", Missing);

    /// <summary>The warning `validate --allow-missing-plugins` and `run` print for it.</summary>
    public ConfigError Warning => new(Missing[0].Location, $"rule '{Name}' is {Reason}{Missing[0].Hint}: it starts when the plugin is dropped into a plugins folder");
}

/// <summary>Folders in order, equal when their paths are (a list in a record would compare by reference).</summary>
internal sealed class FolderList(IEnumerable<string> paths) : IReadOnlyList<string>, IEquatable<FolderList>
{
    private readonly string[] _paths = paths.Distinct(StringComparer.Ordinal).ToArray();

    public string this[int index] => _paths[index];
    public int Count => _paths.Length;
    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)_paths).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => _paths.GetEnumerator();
    public bool Equals(FolderList? other) => other is not null && _paths.SequenceEqual(other._paths, StringComparer.Ordinal);
    public override bool Equals(object? obj) => Equals(obj as FolderList);
    public override int GetHashCode() => _paths.Aggregate(0, (h, p) => HashCode.Combine(h, StringComparer.Ordinal.GetHashCode(p)));
    public override string ToString() => string.Join(", ", _paths);
}

/// <summary>Overrides of the composed message; placeholders: {subject} {text} {short} {rule} {kind} {status} {since} {description} {host} {count}.</summary>
internal sealed class TemplateSpec
{
    public string? Subject { get; set; }
    public string? Text { get; set; }
    public string? Short { get; set; }
}

/// <summary>Exponential backoff between remediation attempts; the first attempt of an episode is immediate.</summary>
internal sealed class BackoffSpec : IValidatableObject
{
    [Description("The wait before the second attempt.")]
    public TimeSpan Initial { get; set; } = TimeSpan.FromSeconds(1);

    [Range(1.0, 100.0), Description("Each further wait is this many times the previous one.")]
    public double Factor { get; set; } = 2;

    [Description("The longest wait between attempts (and, unless restart-budget.retry-after says otherwise, between the slow retries after giving up).")]
    public TimeSpan Max { get; set; } = TimeSpan.FromMinutes(1);

    [Range(0.0, 1.0), Description("Random spread of each wait, as a fraction (0.1 = ±10%), so services restarted together do not retry in step.")]
    public double Jitter { get; set; } = 0.1;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Initial < TimeSpan.Zero) yield return new("initial cannot be negative", [nameof(Initial)]);
        if (Max < Initial) yield return new($"max ({Duration.Format(Max)}) must be at least initial ({Duration.Format(Initial)})", [nameof(Max)]);
    }
}

/// <summary>How many attempts an episode may use, and what happens after.</summary>
internal sealed class RestartBudgetSpec : IValidatableObject
{
    [Range(1, 10_000), Description("Attempts allowed within the window; one more needed means the rule gives up (once, with an event).")]
    public int Max { get; set; } = 5;

    [Description("The sliding window the attempts are counted in.")]
    public TimeSpan Within { get; set; } = TimeSpan.FromMinutes(10);

    [Description("After giving up, one attempt this often (never stops for good). Default: backoff.max (1m), so a service that keeps crashing is tried at least every minute.")]
    public TimeSpan? RetryAfter { get; set; }

    [Description("Healthy this long after a remediation resets the budget, the backoff and the given-up state.")]
    public TimeSpan StableAfter { get; set; } = TimeSpan.FromMinutes(5);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Within <= TimeSpan.Zero) yield return new("within must be longer than 0s, e.g. 10m", [nameof(Within)]);
        if (RetryAfter is { } retry && retry <= TimeSpan.Zero) yield return new("retry-after must be longer than 0s, e.g. 10m", [nameof(RetryAfter)]);
        if (StableAfter < TimeSpan.Zero) yield return new("stable-after cannot be negative", [nameof(StableAfter)]);
    }
}
