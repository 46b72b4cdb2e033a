using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Testing;

/// <summary>One type a plugin registered.</summary>
/// <param name="Kind"><c>probe</c> or <c>action</c>.</param>
/// <param name="Name">The name rules use (<c>probe.type</c>, an action's <c>type</c>).</param>
/// <param name="Implementation">The probe or action type.</param>
/// <param name="Options">The options type bound from <c>with:</c>.</param>
/// <param name="Description">The one-line description.</param>
public sealed record Registration(string Kind, string Name, Type Implementation, Type Options, string? Description);

/// <summary>Thrown by the checks, listing every violation found.</summary>
public sealed class ConformanceException(IReadOnlyList<string> violations)
    : Exception("The plugin breaks Sentinel's plugin contract:\n- " + string.Join("\n- ", violations))
{
    /// <summary>What was wrong, one line each.</summary>
    public IReadOnlyList<string> Violations { get; } = violations;
}

/// <summary>
/// The conformance checks every first-party Sentinel plugin passes, for a plugin author's own tests: stable
/// kebab-case names with descriptions, sealed types with the constructors Sentinel needs, options that
/// validate, probes that report a failing target instead of throwing and honour cancellation promptly.
/// </summary>
public static partial class PluginConformance
{
    /// <summary>What the plugin registers, as Sentinel's loader would see it.</summary>
    public static IReadOnlyList<Registration> Registrations(ISentinelPlugin plugin)
    {
        var registrar = new RecordingRegistrar();
        plugin.Register(registrar);
        return registrar.Items;
    }

    /// <summary>Checks names, descriptions and types of everything the plugin registers; throws with every violation.</summary>
    public static void AssertContract(ISentinelPlugin plugin)
    {
        var violations = new List<string>();
        if (!plugin.GetType().IsPublic || plugin.GetType().GetConstructor(Type.EmptyTypes) is null)
            violations.Add($"{plugin.GetType().Name}: the ISentinelPlugin type must be public with a parameterless constructor");
        var items = Registrations(plugin);
        if (items.Count == 0) violations.Add("the plugin registers nothing");
        foreach (var dup in items.GroupBy(i => i.Name).Where(g => g.Count() > 1)) violations.Add($"'{dup.Key}' is registered {dup.Count()} times: names must be unique");
        foreach (var i in items)
        {
            if (!KebabName().IsMatch(i.Name)) violations.Add($"'{i.Name}': names are lower-case kebab-case, e.g. file-age");
            if (string.IsNullOrWhiteSpace(i.Description)) violations.Add($"'{i.Name}': give a one-line description (sentinel plugins shows it)");
            if (!i.Implementation.IsSealed) violations.Add($"'{i.Name}': {i.Implementation.Name} should be sealed");
            if (!i.Options.IsSealed) violations.Add($"'{i.Name}': {i.Options.Name} should be sealed");
            if (i.Options.GetConstructor(Type.EmptyTypes) is null) violations.Add($"'{i.Name}': {i.Options.Name} needs a public parameterless constructor (Sentinel binds YAML into it)");
            if (i.Implementation.GetConstructors().Length == 0) violations.Add($"'{i.Name}': {i.Implementation.Name} needs a public constructor");
        }
        if (violations.Count > 0) throw new ConformanceException(violations);
    }

    /// <summary>The validation errors of an options object (DataAnnotations and IValidatableObject), as users would see them.</summary>
    public static IReadOnlyList<string> Validate(object options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results.Select(r => r.ErrorMessage ?? "invalid").ToList();
    }

    /// <summary>A probe pointed at a target that fails: it must return an unhealthy result with a description, not throw.</summary>
    public static async Task<ProbeResult> AssertReportsFailureAsync(IProbe probe, TimeProvider? time = null)
    {
        ProbeResult result;
        try { result = await probe.CheckAsync(Context(time), CancellationToken.None); }
        catch (Exception ex) { throw new ConformanceException([$"the probe threw {ex.GetType().Name} ({ex.Message}) for a failing target: return ProbeResult.Unhealthy(...) instead"]); }
        if (result.Status != ProbeStatus.Unhealthy) throw new ConformanceException([$"the probe reported {result.Status} for a failing target"]);
        if (string.IsNullOrWhiteSpace(result.Description)) throw new ConformanceException(["an unhealthy result needs a description saying what was seen"]);
        return result;
    }

    /// <summary>With its token already cancelled, a probe must return or throw OperationCanceledException within <paramref name="within"/> (default 1 s).</summary>
    public static async Task AssertHonoursCancellationAsync(IProbe probe, TimeSpan? within = null)
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var limit = within ?? TimeSpan.FromSeconds(1);
        var task = Task.Run(async () =>
        {
            try { await probe.CheckAsync(Context(null), cancelled.Token); }
            catch (OperationCanceledException) { }
        });
        if (await Task.WhenAny(task, Task.Delay(limit)) != task)
            throw new ConformanceException([$"the probe ignored cancellation for more than {limit.TotalSeconds}s: pass the token to every await"]);
        await task;
    }

    private static ProbeContext Context(TimeProvider? time) => new()
    {
        RuleName = "conformance", TimeProvider = time ?? TimeProvider.System, Logger = NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5),
    };

    [GeneratedRegex("^[a-z][a-z0-9-]*$")]
    private static partial Regex KebabName();

    private sealed class RecordingRegistrar : IPluginRegistrar
    {
        public List<Registration> Items { get; } = [];

        public void AddProbe<TProbe, TOptions>(string name, string? description = null) where TProbe : class, IProbe where TOptions : class, new()
            => Items.Add(new("probe", name, typeof(TProbe), typeof(TOptions), description));

        public void AddAction<TAction, TOptions>(string name, string? description = null) where TAction : class, IAction where TOptions : class, new()
            => Items.Add(new("action", name, typeof(TAction), typeof(TOptions), description));
    }
}
