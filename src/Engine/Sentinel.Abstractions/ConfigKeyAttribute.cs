namespace Sentinel.Abstractions;

/// <summary>
/// Names the YAML key an options property is bound from. Without it the key is the property name in
/// kebab-case (<c>FromStart</c> → <c>from-start</c>).
/// </summary>
/// <param name="key">The key as written in a rule's <c>with:</c> block.</param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    /// <summary>The key as written in YAML.</summary>
    public string Key { get; } = key;
}

/// <summary>
/// Marks an options property as a secret: its value never appears in logs, status output or the API.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SecretAttribute : Attribute;

/// <summary>
/// Marks a string option as a file or folder path: a relative value is resolved against the folder of the
/// configuration file it is written in (not Sentinel's working directory, which under systemd is /).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class FilePathAttribute : Attribute;

/// <summary>
/// Marks a probe whose unhealthy results are events, not a lasting state (a matched log line, a job reporting
/// failure): each one is worth telling, so a rule that does not set <c>failure-threshold</c> itself goes down
/// at the first (the rules' <c>defaults.failure-threshold</c>, meant for flapping targets, does not apply).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ReportsEventsAttribute : Attribute;

/// <summary>
/// Marks a probe that checks something any machine can reach (a URL, a port, a DNS name), not something of the box it
/// runs on (a process, a file, a disk). In cluster mode its rules run once per interval for the whole cluster, on
/// whichever node is alive; a probe without this mark is a node probe: its rules run on the node they name
/// (<c>node:</c>), never moved to another box. Unmarked is the safe default: a probe written before cluster mode may
/// read local state.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ClusterWideAttribute : Attribute;
