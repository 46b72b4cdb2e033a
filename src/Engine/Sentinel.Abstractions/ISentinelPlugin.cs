namespace Sentinel.Abstractions;

/// <summary>
/// The entry point of a plugin assembly. Sentinel creates every non-abstract public type that
/// implements this interface (with a parameterless constructor) and calls <see cref="Register"/> once
/// each time the assembly is loaded or reloaded.
/// </summary>
public interface ISentinelPlugin
{
    /// <summary>Registers the probe and action types this plugin provides.</summary>
    /// <param name="registrar">Collects the registrations; names must be unique across all plugins.</param>
    void Register(IPluginRegistrar registrar);
}

/// <summary>Collects the probe and action types a plugin provides, each under a stable name.</summary>
public interface IPluginRegistrar
{
    /// <summary>
    /// Registers a probe type under <paramref name="name"/> (the value of <c>probe.type</c> in a rule).
    /// Sentinel creates one <typeparamref name="TProbe"/> per rule, passing the rule's <c>with:</c> block
    /// bound to a <typeparamref name="TOptions"/> and validated with DataAnnotations. The constructor may
    /// also ask for <see cref="TimeProvider"/> and <c>ILogger&lt;T&gt;</c>.
    /// </summary>
    /// <param name="name">Lower-case, kebab-case name, e.g. <c>http</c> or <c>log-regex</c>.</param>
    /// <param name="description">One line shown by <c>sentinel plugins</c>.</param>
    void AddProbe<TProbe, TOptions>(string name, string? description = null)
        where TProbe : class, IProbe
        where TOptions : class, new();

    /// <summary>
    /// Registers an action type (remediation or notification) under <paramref name="name"/>;
    /// created like probes, one instance per use in a rule.
    /// </summary>
    /// <param name="name">Lower-case, kebab-case name, e.g. <c>exec</c> or <c>email</c>.</param>
    /// <param name="description">One line shown by <c>sentinel plugins</c>.</param>
    void AddAction<TAction, TOptions>(string name, string? description = null)
        where TAction : class, IAction
        where TOptions : class, new();
}
