using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;
using Sentinel.Engine.Plugins;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Engine.Configuration;

// The YAML shape, bound by YamlBinder. Keys are the kebab-case property names. See docs/configuration.md.

internal sealed class RootSpec
{
    public EngineSpec? Engine { get; set; }
    public DefaultsSpec? Defaults { get; set; }
    public List<string>? Include { get; set; }
    public List<ChannelSpec>? Channels { get; set; }
    public NotificationsSpec? Notifications { get; set; }
    public List<MaintenanceSpec>? Maintenance { get; set; }
    public List<RuleSpec>? Rules { get; set; }
}

/// <summary>A time when alerts are muted: a recurring window (cron + duration) or a one-off (start, end).</summary>
internal sealed class MaintenanceSpec : IValidatableObject
{
    [Required] public string? Name { get; set; }

    [Description("The rules it mutes; default: all.")]
    public List<string>? Rules { get; set; }

    [Description("When a recurring window starts: 5-field cron, in UTC unless time-zone is set.")]
    public string? Cron { get; set; }

    public TimeSpan? Duration { get; set; }

    [Description("A one-off window: ISO 8601 times with an offset, e.g. 2026-12-01T02:00:00Z.")]
    public string? Start { get; set; }

    public string? End { get; set; }

    [Description("IANA time zone of the cron expression, e.g. Europe/Berlin.")]
    public string? TimeZone { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if ((Cron is null) == (Start is null))
            yield return new("write either cron + duration (a recurring window) or start + end (a one-off), not both or neither", [nameof(Cron)]);
        if (Cron is not null && Duration is not { } d)
            yield return new("a recurring window needs duration, e.g. duration: 30m", [nameof(Duration)]);
        if (Start is not null && End is null) yield return new("a one-off window needs end too", [nameof(End)]);
        if (Start is not null && !DateTimeOffset.TryParse(Start, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out _))
            yield return new($"start '{Start}' is not a time: write e.g. 2026-12-01T02:00:00Z", [nameof(Start)]);
        if (End is not null && !DateTimeOffset.TryParse(End, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out _))
            yield return new($"end '{End}' is not a time: write e.g. 2026-12-01T03:00:00Z", [nameof(End)]);
        if (TimeZone is not null && !TimeZoneInfo.TryFindSystemTimeZoneById(TimeZone, out _))
            yield return new($"time-zone '{TimeZone}' is unknown: use an IANA name such as Europe/Berlin", [nameof(TimeZone)]);
    }
}

/// <summary>A named notification target (see docs/notifications.md).</summary>
internal sealed class ChannelSpec
{
    [Required] public string? Name { get; set; }
    [Required] public string? Type { get; set; }
    public YamlMappingNode? With { get; set; }

    [Description("The channel that gets this channel's messages when it keeps failing (or fails permanently).")]
    public string? Fallback { get; set; }

    [DurationRange("0s"), Description("How long a message keeps failing on this channel before it goes to the fallback.")]
    public TimeSpan FailoverAfter { get; set; } = TimeSpan.FromMinutes(5);

    [DurationRange("0s", MinimumIsExclusive = true, What = "give-up-after", Example = "24h"), Description("An undelivered message is dropped, with an error, after this long.")]
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromHours(24);

    public TemplateSpec? Template { get; set; }
}

internal sealed class NotificationsSpec
{
    [Description("Incidents opening (or resolving) within this time go out as one message per channel.")]
    public TimeSpan GroupWait { get; set; } = TimeSpan.FromSeconds(30);

    [Description("The channels told of Sentinel's own trouble (its state cannot be written: a full disk). Default: the channels of defaults.notify that are not escalations, or every channel when defaults.notify names none.")]
    public List<string>? Engine { get; set; }
}

internal sealed class NotifySpec
{
    [Required] public string? Channel { get; set; }

    [Description("Escalation: notify this channel only if the incident is still open (and not acknowledged) after this long.")]
    public TimeSpan After { get; set; }
}

internal sealed class IncludedFileSpec
{
    // Reported as misplaced by the loader; declared so they are not also reported as unknown.
    public YamlNode? Engine { get; set; }
    public YamlNode? Defaults { get; set; }
    public YamlNode? Include { get; set; }
    public YamlNode? Channels { get; set; }
    public YamlNode? Notifications { get; set; }
    public YamlNode? Maintenance { get; set; }
    public List<RuleSpec>? Rules { get; set; }
}

internal sealed class EngineSpec
{
    [Description("The engine's HTTP server (health, status API).")]
    public HttpSpec Http { get; set; } = new();

    [Description("The plugin folders (one, or a list), relative to the config file's folder; a plugin in a later folder replaces one of the same name in an earlier one. Default: plugins beside the sentinel executable, then plugins beside the config (installed by the package: /usr/lib/sentinel/plugins, then /etc/sentinel/plugins for drop-ins).")]
    public List<string>? Plugins { get; set; }

    [Description("Where sentinel.db, history.db and status.json live, relative to the config file's folder. Default: $STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/sentinel for a config under /etc, else state beside the config.")]
    public string? State { get; set; }

    public LogSpec Log { get; set; } = new();

    [Range(1, 10_000), Description("How many rule checks may run at once.")]
    public int MaxConcurrency { get; set; } = 100;

    [DurationRange("10ms", "1h"), Description("How often changed rule states are written to the state store and status.json; state transitions are written at once.")]
    public TimeSpan StateFlushInterval { get; set; } = TimeSpan.FromSeconds(5);

    public bool WatchConfig { get; set; } = true;

    public bool WatchPlugins { get; set; } = true;

    [Description("The engine's own dead-man's switch: pings sent only while the scheduler runs rules.")]
    public HeartbeatSpec? Heartbeat { get; set; }

    [Description("Check history (state/history.db): every check for the retention, hourly counts for longer.")]
    public HistorySpec History { get; set; } = new();

    [Description("Cluster mode: nodes that share one PostgreSQL run each cluster rule once (see docs/cluster.md). Without it, state is the embedded SQLite file.")]
    public ClusterSpec? Cluster { get; set; }
}

/// <summary>Several nodes on one PostgreSQL: each cluster rule runs once across them, and moves when its node dies.</summary>
internal sealed partial class ClusterSpec : IValidatableObject
{
    [Required, Secret, Description("The PostgreSQL connection string every node uses, e.g. \"Host=db1;Database=sentinel;Username=sentinel;Password=${PG_PASSWORD}\".")]
    public string? Postgres { get; set; }

    [Description("This node's name in the cluster (unique per node; what node: in a rule names). Default: the host name.")]
    public string? Node { get; set; }

    [DurationRange("500ms", "1m", What = "checkin-interval", Example = "2s"), Description("How often this node tells the cluster it is alive; a node silent for about two intervals is taken for dead and its cluster rules move.")]
    public TimeSpan CheckinInterval { get; set; } = TimeSpan.FromSeconds(2);

    [Description("The address the other nodes reach this node's API at, to forward a command about a rule this node runs (e.g. \"http://db2:5100\"). Default: engine.http.listen (with the host name for 0.0.0.0); a loopback address serves only nodes on this host.")]
    public string? Advertise { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Advertise is { } advertise && !(Uri.TryCreate(advertise, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" && url.PathAndQuery == "/"))
            yield return new($"advertise '{advertise}' is not the base address of an API: write e.g. \"http://db2:5100\" (http or https, host and port, no path)", ["advertise"]);
        if (Postgres is { } text)
        {
            string? problem = null;
            try { _ = new Npgsql.NpgsqlConnectionStringBuilder(text); }
            catch (ArgumentException ex) { problem = ex.Message; }
            // The message names the bad key, never the string (it holds the password).
            if (problem is not null)
                yield return new($"postgres is not a PostgreSQL connection string ({problem}): write e.g. \"Host=db1;Database=sentinel;Username=sentinel;Password=${{PG_PASSWORD}}\"", ["postgres"]);
        }
        if (Node is { } node && !NodeName().IsMatch(node))
            yield return new($"node '{node}' is not a node name: use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. db1)", ["node"]);
        else if (Node == ConfigLoader.AllNodes)
            yield return new($"node '{ConfigLoader.AllNodes}' is not a node name: a rule's node: {ConfigLoader.AllNodes} means every node; name this node otherwise (e.g. db1)", ["node"]);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    internal static partial System.Text.RegularExpressions.Regex NodeName();
}

internal sealed class HistorySpec : IValidatableObject
{
    public bool Enabled { get; set; } = true;

    [Description("How long every check is kept.")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    [Description("How long the hourly counts (uptime, failures, durations) are kept; at least the retention.")]
    public TimeSpan DownsampledRetention { get; set; } = TimeSpan.FromDays(400);

    [DurationRange("100ms", "1h"), Description("How often new checks are written (served from memory until then; a crash loses at most this much history, never state).")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Retention < TimeSpan.FromHours(1))
            yield return new ValidationResult("retention must be at least 1h (the page's uptime needs the last hours): write e.g. retention: 30d", ["retention"]);
        if (DownsampledRetention < Retention)
            yield return new ValidationResult($"downsampled-retention ({Duration.Format(DownsampledRetention)}) must be at least the retention ({Duration.Format(Retention)})", ["downsampled-retention"]);
    }
}

internal sealed class HeartbeatSpec
{
    [DurationRange("1s", What = "interval"), Description("How often a success ping is sent.")]
    public TimeSpan Every { get; set; } = TimeSpan.FromMinutes(1);

    [Description("Where: actions such as { type: healthchecks, with: { uuid: ... } }.")]
    public List<PluginRefSpec> To { get; set; } = [];
}

internal sealed class HttpSpec
{
    public bool Enabled { get; set; } = true;

    [Description("host:port to listen on; loopback by default. Port 0 picks a free port.")]
    public string Listen { get; set; } = "127.0.0.1:5100";

    [Secret, Description("Bearer token required by the API's changing calls (pause, resume, run, remediate, ack); default: $SENTINEL_API_TOKEN, else one generated into state/api-token. Required to listen beyond loopback.")]
    public string? Token { get; set; }
}


internal sealed class LogSpec
{
    [Description("Folder of the rolling log files, relative to the config file's folder; empty: console only. Default: $LOGS_DIRECTORY (systemd's LogsDirectory=), else /var/log/sentinel for a config under /etc, else logs beside the config.")]
    public string? Directory { get; set; }

    public LogLevelName Level { get; set; } = LogLevelName.Information;

    [Range(1, 1000)]
    public int RetainedFiles { get; set; } = 14;
}

internal sealed class DefaultsSpec
{
    [DurationRange("100ms", What = "interval")] public TimeSpan Every { get; set; } = TimeSpan.FromSeconds(30);
    [DurationRange("0s", MinimumIsExclusive = true, What = "timeout", Example = "10s")] public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
    [Range(1, 1000)] public int FailureThreshold { get; set; } = 3;
    [Range(1, 1000)] public int SuccessThreshold { get; set; } = 2;
    public BackoffSpec? Backoff { get; set; }
    public RestartBudgetSpec? RestartBudget { get; set; }
    public TimeSpan? Grace { get; set; }
    public List<NotifySpec>? Notify { get; set; }
    public TimeSpan? ReminderInterval { get; set; }
    public bool? SendResolved { get; set; }
    public TimeSpan? MinDown { get; set; }
    public List<AlertOn>? AlertOn { get; set; }
}

internal sealed class RuleSpec
{
    [Required] public string? Name { get; set; }
    public string? Description { get; set; }
    [DurationRange("100ms", What = "interval")] public TimeSpan? Every { get; set; }
    public string? Cron { get; set; }
    [DurationRange("0s", MinimumIsExclusive = true, What = "timeout", Example = "10s")] public TimeSpan? Timeout { get; set; }
    public PluginRefSpec? Probe { get; set; }
    public YamlNode? Conditions { get; set; }
    [Range(1, 1000)] public int? FailureThreshold { get; set; }
    [Range(1, 1000)] public int? SuccessThreshold { get; set; }
    public bool Paused { get; set; }
    public SuperviseSpec? Supervise { get; set; }
    public List<PluginRefSpec>? Remediate { get; set; }
    [Description("Actions run after every check, whatever its result (e.g. a scheduled backup).")]
    public List<PluginRefSpec>? Run { get; set; }
    public BackoffSpec? Backoff { get; set; }
    public RestartBudgetSpec? RestartBudget { get; set; }
    [Description("After a remediation, failures for this long do not count toward the next one.")]
    public TimeSpan? Grace { get; set; }
    public List<string>? DependsOn { get; set; }
    [Description("Channels to notify when the rule goes down; replaces defaults.notify.")]
    public List<NotifySpec>? Notify { get; set; }
    [Description("While an incident is open and not acknowledged, notify again this often.")]
    public TimeSpan? ReminderInterval { get; set; }
    public bool? SendResolved { get; set; }
    [Description("Outages shorter than this are not told (flap damping); the down message waits this long. Default 0: every outage is told.")]
    public TimeSpan? MinDown { get; set; }
    [Description("What opens an alert: down, gave-up (default both), remediation-failed, restart-rate, exited (every crash of a supervised service).")]
    public List<AlertOn>? AlertOn { get; set; }
    public RestartRateSpec? RestartRate { get; set; }
    [Description("Mirror the rule to a dead-man's switch: success while healthy (at most every ping-every), fail when down, log on remediation.")]
    public PluginRefSpec? Ping { get; set; }
    public TimeSpan? PingEvery { get; set; }
    [Description("Cluster mode: the node that runs this rule (its engine.cluster.node), or all: every node runs it, each as NAME@node. Needed by rules that check the box they run on (supervise, process, memory, log-*, disk, file-valid...); a cluster-wide rule (http, gateway...) with node: runs only there.")]
    public string? Node { get; set; }
}

internal sealed class PluginRefSpec
{
    [Required] public string? Type { get; set; }
    public YamlMappingNode? With { get; set; }
}
