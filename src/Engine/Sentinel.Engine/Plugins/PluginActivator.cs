using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Plugins;

/// <summary>
/// Makes instances of the types the catalog registered: one probe per rule, one action per use (a rule's remediate,
/// run and ping actions, a channel, the engine heartbeat), each given its bound options and what its constructor asks
/// for (<see cref="TimeProvider"/>, <see cref="ILogger{T}"/>, <see cref="ILoggerFactory"/>, the ping registry, the cluster's members).
/// </summary>
internal sealed class PluginActivator
{
    private readonly IServiceProvider _services;

    public PluginActivator(ILoggerFactory loggerFactory, TimeProvider time, Heartbeat.PingRegistry? pings = null, ClusterMembership? cluster = null)
    {
        _services = new ServiceCollection()
            .AddSingleton(loggerFactory)
            .AddSingleton(typeof(ILogger<>), typeof(Logger<>))
            .AddSingleton(time)
            .AddSingleton(pings ?? new Heartbeat.PingRegistry(time))
            .AddSingleton(cluster ?? new ClusterMembership(time))
            .BuildServiceProvider();
    }

    public IProbe Create(RuleDefinition rule) => Create<IProbe>(rule.Name, rule.Probe, rule.ProbeOptions, rule.Location, "probe");

    public IAction CreateAction(RuleDefinition rule, ActionDefinition action) => Create<IAction>(rule.Name, action.Type, action.Options, action.Location, "action");

    /// <summary>An action used outside a rule (a channel, the engine heartbeat); <paramref name="owner"/> names it in errors.</summary>
    public IAction CreateAction(string owner, ActionDefinition action) => Create<IAction>(owner, action.Type, action.Options, action.Location, "action");

    private T Create<T>(string owner, PluginTypeRegistration registration, object options, SourceLocation location, string kind)
    {
        try
        {
            var type = registration.ImplementationType;
            var wantsOptions = type.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType.IsInstanceOfType(options)));
            return (T)(wantsOptions
                ? ActivatorUtilities.CreateInstance(_services, type, options)
                : ActivatorUtilities.CreateInstance(_services, type));
        }
        catch (Exception ex)
        {
            var inner = ex is System.Reflection.TargetInvocationException { InnerException: { } ie } ? ie : ex;
            throw new ConfigException([new ConfigError(location,
                $"rule '{owner}': {kind} '{registration.Name}' (plugin {registration.Plugin}) could not be created: {inner.Message}")]);
        }
    }
}
