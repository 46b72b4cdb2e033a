using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Engine.Conditions;
using Sentinel.Engine.Plugins;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Engine.Configuration;

// The YAML shape, bound by YamlBinder. Keys are the kebab-case property names. See docs/configuration.md.

public sealed class RootSpec
{
    public EngineSpec? Engine { get; set; }
    public DefaultsSpec? Defaults { get; set; }
    public List<string>? Include { get; set; }
    public List<RuleSpec>? Rules { get; set; }
}

public sealed class IncludedFileSpec
{
    // Reported as misplaced by the loader; declared so they are not also reported as unknown.
    public YamlNode? Engine { get; set; }
    public YamlNode? Defaults { get; set; }
    public YamlNode? Include { get; set; }
    public List<RuleSpec>? Rules { get; set; }
}

public sealed class EngineSpec
{
    [Description("The engine's HTTP server (health, status API).")]
    public HttpSpec Http { get; set; } = new();

    [Description("The plugin drop folder, relative to the config file's folder.")]
    public string Plugins { get; set; } = "plugins";

    [Description("Where state/sentinel.db and state/status.json live, relative to the config file's folder.")]
    public string State { get; set; } = "state";

    public LogSpec Log { get; set; } = new();

    [Range(1, 10_000), Description("How many rule checks may run at once.")]
    public int MaxConcurrency { get; set; } = 100;

    [Description("How often changed rule states are written to the state store and status.json; state transitions are written at once.")]
    public TimeSpan StateFlushInterval { get; set; } = TimeSpan.FromSeconds(5);

    public bool WatchConfig { get; set; } = true;

    public bool WatchPlugins { get; set; } = true;
}

public sealed class HttpSpec
{
    public bool Enabled { get; set; } = true;

    [Description("host:port to listen on; loopback by default. Port 0 picks a free port.")]
    public string Listen { get; set; } = "127.0.0.1:5100";
}

public enum LogLevelName { Trace, Debug, Information, Warning, Error }

public sealed class LogSpec
{
    [Description("Folder of the rolling log files, relative to the config file's folder. Empty: console only.")]
    public string Directory { get; set; } = "logs";

    public LogLevelName Level { get; set; } = LogLevelName.Information;

    [Range(1, 1000)]
    public int RetainedFiles { get; set; } = 14;
}

public sealed class DefaultsSpec
{
    public TimeSpan Every { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
    [Range(1, 1000)] public int FailureThreshold { get; set; } = 3;
    [Range(1, 1000)] public int SuccessThreshold { get; set; } = 2;
}

public sealed class RuleSpec
{
    [Required] public string? Name { get; set; }
    public string? Description { get; set; }
    public TimeSpan? Every { get; set; }
    public string? Cron { get; set; }
    public TimeSpan? Timeout { get; set; }
    [Required] public PluginRefSpec? Probe { get; set; }
    public YamlNode? Conditions { get; set; }
    [Range(1, 1000)] public int? FailureThreshold { get; set; }
    [Range(1, 1000)] public int? SuccessThreshold { get; set; }
    public bool Paused { get; set; }
}

public sealed class PluginRefSpec
{
    [Required] public string? Type { get; set; }
    public YamlMappingNode? With { get; set; }
}

// The validated, resolved configuration the engine runs.

public sealed record EngineSettings(
    string ConfigFile,
    string PluginsDirectory,
    string StateDirectory,
    string LogDirectory,
    LogLevelName LogLevel,
    int LogRetainedFiles,
    bool HttpEnabled,
    string HttpListen,
    int MaxConcurrency,
    TimeSpan StateFlushInterval,
    bool WatchConfig,
    bool WatchPlugins);

public sealed record RuleDefinition
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
    public SourceLocation Location { get; init; }
    /// <summary>Changes whenever anything that affects how the rule runs changes (its YAML or its plugin's code).</summary>
    public required string Fingerprint { get; init; }

    public string Schedule => Every is { } e ? "every " + Duration.Format(e) : "cron " + CronText;
}

public sealed record SentinelConfig(EngineSettings Engine, IReadOnlyList<RuleDefinition> Rules, IReadOnlyList<string> Files);
