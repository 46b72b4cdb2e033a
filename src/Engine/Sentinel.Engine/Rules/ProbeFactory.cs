using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Rules;

/// <summary>Creates one probe instance per rule: the bound options plus what the constructor asks for
/// (<see cref="TimeProvider"/>, <see cref="ILogger{T}"/>, <see cref="ILoggerFactory"/>).</summary>
public sealed class ProbeFactory
{
    private readonly IServiceProvider _services;

    public ProbeFactory(ILoggerFactory loggerFactory, TimeProvider time)
    {
        _services = new ServiceCollection()
            .AddSingleton(loggerFactory)
            .AddSingleton(typeof(ILogger<>), typeof(Logger<>))
            .AddSingleton(time)
            .BuildServiceProvider();
    }

    public IProbe Create(RuleDefinition rule)
    {
        try
        {
            var type = rule.Probe.ImplementationType;
            var wantsOptions = type.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType.IsInstanceOfType(rule.ProbeOptions)));
            return (IProbe)(wantsOptions
                ? ActivatorUtilities.CreateInstance(_services, type, rule.ProbeOptions)
                : ActivatorUtilities.CreateInstance(_services, type));
        }
        catch (Exception ex)
        {
            var inner = ex is System.Reflection.TargetInvocationException { InnerException: { } ie } ? ie : ex;
            throw new ConfigException([new ConfigError(rule.Location,
                $"rule '{rule.Name}': probe '{rule.Probe.Name}' (plugin {rule.Probe.Plugin}) could not be created: {inner.Message}")]);
        }
    }
}
