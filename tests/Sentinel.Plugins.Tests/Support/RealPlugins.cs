using System.Reflection;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Rules;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Plugins.Tests.Support;

/// <summary>The first-party plugins as users get them: folders in plugins/, loaded by the real loader, options bound by the real binder.</summary>
internal static class RealPlugins
{
    private static string Meta(string key) => typeof(RealPlugins).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static string Directory { get; } = Path.Combine(Path.GetFullPath(Meta("RepoRoot")), "plugins");

    public static PluginCatalog Catalog { get; } = Load();

    private static PluginCatalog Load()
    {
        var catalog = new PluginCatalog(Directory, NullLogger.Instance);
        catalog.LoadAll();
        catalog.Errors.Should().BeEmpty();
        return catalog;
    }

    public static PluginTypeRegistration Probe(string type)
    {
        Catalog.TryGet(PluginKind.Probe, type, out var reg).Should().BeTrue($"probe '{type}' is registered");
        return reg;
    }

    public static PluginTypeRegistration Action(string type)
    {
        Catalog.TryGet(PluginKind.Action, type, out var reg).Should().BeTrue($"action '{type}' is registered");
        return reg;
    }

    /// <summary>Binds a `with:` block (YAML flow or block text) as a rule would, returning the options or the errors.</summary>
    public static (object? Options, List<ConfigError> Errors) Bind(string type, string withYaml, PluginKind kind = PluginKind.Probe)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(withYaml.Trim().Length == 0 ? "{}" : withYaml));
        var errors = new List<ConfigError>();
        var binder = new YamlBinder("test.yaml", Environment.GetEnvironmentVariable, errors, new BindingLocations());
        var options = binder.Bind(stream.Documents[0].RootNode, (kind == PluginKind.Probe ? Probe(type) : Action(type)).OptionsType, "with");
        return (options, errors);
    }

    public static IProbe Create(string type, string withYaml, TimeProvider? time = null)
    {
        var (options, errors) = Bind(type, withYaml);
        errors.Should().BeEmpty();
        var reg = Probe(type);
        var rule = new RuleDefinition
        {
            Name = "test", Timeout = TimeSpan.FromSeconds(5), Probe = reg, ProbeOptions = options!, FailureThreshold = 1,
            SuccessThreshold = 1, Fingerprint = "t", Every = TimeSpan.FromSeconds(1),
        };
        return new PluginActivator(NullLoggerFactory.Instance, time ?? TimeProvider.System).Create(rule);
    }

    public static IAction CreateAction(string type, string withYaml)
    {
        var (options, errors) = Bind(type, withYaml, PluginKind.Action);
        errors.Should().BeEmpty();
        var rule = new RuleDefinition
        {
            Name = "test", Timeout = TimeSpan.FromSeconds(5), Probe = Probe("process"), ProbeOptions = new object(), FailureThreshold = 1,
            SuccessThreshold = 1, Fingerprint = "t", Every = TimeSpan.FromSeconds(1),
        };
        return new PluginActivator(NullLoggerFactory.Instance, TimeProvider.System).CreateAction(rule, new ActionDefinition(Action(type), options!, default));
    }

    /// <summary>Runs an action once as a remediation attempt; returns what it wrote and what it threw.</summary>
    public static async Task<(IReadOnlyList<string> Output, Exception? Error)> RunAsync(this IAction action, int attempt = 1, CancellationToken cancellationToken = default)
    {
        var context = new ActionContext
        {
            RuleName = "test", Event = "remediate", Message = "test", Attempt = attempt, TimeProvider = TimeProvider.System, Logger = NullLogger.Instance,
        };
        try { await action.ExecuteAsync(context, cancellationToken); }
        catch (Exception ex) { return (context.Output.Lines, ex); }
        return (context.Output.Lines, null);
    }

    /// <summary>Sends a notification through a channel action; returns what it reported and what it threw.</summary>
    public static async Task<(IReadOnlyList<string> Output, Exception? Error)> NotifyAsync(this IAction action, Notification notification, CancellationToken cancellationToken = default)
    {
        var context = new ActionContext
        {
            RuleName = "test", Event = "notify", Message = notification.Text, Notification = notification, TimeProvider = TimeProvider.System, Logger = NullLogger.Instance,
        };
        try { await action.ExecuteAsync(context, cancellationToken); }
        catch (Exception ex) { return (context.Output.Lines, ex); }
        return (context.Output.Lines, null);
    }

    public static Notification SampleNotification(string text = "DOWN: api\n  saw: GET http://127.0.0.1:8080/health -> 503") => new()
    {
        Subject = "[Sentinel] DOWN: api",
        Text = text,
        Html = "<h3>DOWN: api</h3>",
        Short = "DOWN api: GET http://127.0.0.1:8080/health -> 503 (since 12:00Z)",
        Items = [new NotificationItem("api", "down", "down", new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero), "GET http://127.0.0.1:8080/health -> 503", 7)],
    };

    public static async Task<ProbeResult> CheckAsync(this IProbe probe, CancellationToken cancellationToken = default, TimeProvider? time = null)
        => await probe.CheckAsync(new ProbeContext { RuleName = "test", TimeProvider = time ?? TimeProvider.System, Logger = NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5) }, cancellationToken);
}
