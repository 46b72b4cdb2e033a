using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;

namespace Sentinel.Engine.Rules;

/// <summary>Creates one probe instance per rule: the bound options plus what the constructor asks for
/// (<see cref="TimeProvider"/>, <see cref="ILogger{T}"/>, <see cref="ILoggerFactory"/>).</summary>
internal sealed class ProbeFactory
{
    private readonly IServiceProvider _services;

    public ProbeFactory(ILoggerFactory loggerFactory, TimeProvider time, Heartbeat.PingRegistry? pings = null)
    {
        _services = new ServiceCollection()
            .AddSingleton(loggerFactory)
            .AddSingleton(typeof(ILogger<>), typeof(Logger<>))
            .AddSingleton(time)
            .AddSingleton(pings ?? new Heartbeat.PingRegistry(time))
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
