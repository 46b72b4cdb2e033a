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

/// <summary>What <see cref="PluginConformance.AssertHonoursCancellationAsync"/> saw.</summary>
/// <param name="Waited">True when the probe was still waiting on its target when its token was cancelled.</param>
/// <param name="Elapsed">How long it took to return after the cancellation (or to finish, when it did not wait).</param>
public sealed record CancellationCheck(bool Waited, TimeSpan Elapsed);

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

    /// <summary>
    /// A probe pointed at a target that works: it must say so (healthy or degraded) with a description. Since contract
    /// 0.2 a <see cref="ProbeResult"/> nobody set is unhealthy, so a probe that forgets to set its status fails here.
    /// </summary>
    public static async Task<ProbeResult> AssertReportsSuccessAsync(IProbe probe, TimeProvider? time = null)
    {
        ProbeResult result;
        try { result = await probe.CheckAsync(Context(time), CancellationToken.None); }
        catch (Exception ex) { throw new ConformanceException([$"the probe threw {ex.GetType().Name} ({ex.Message}) for a working target"]); }
        if (result.Status == ProbeStatus.Unhealthy)
            throw new ConformanceException([string.IsNullOrWhiteSpace(result.Description)
                ? "the probe reported Unhealthy with no description for a working target: a result whose status was never set (default is Unhealthy since contract 0.2); return ProbeResult.Healthy(...)"
                : $"the probe reported Unhealthy for a working target: {result.Description}"]);
        if (string.IsNullOrWhiteSpace(result.Description)) throw new ConformanceException(["a result needs a description saying what was seen"]);
        return result;
    }

    /// <summary>
    /// Checks that a probe honours cancellation while it waits. Point it at a target that never answers (a
    /// <see cref="HangingTargets"/> port, URL or FIFO): a target that fails at once cannot tell a probe that honours its
    /// token from one that ignores it. Two runs: one with a token already cancelled, and one cancelled while the probe
    /// waits (after <paramref name="engaged"/> holds, e.g. <c>() => targets.Connections &gt; 0</c>, or 300 ms); each must
    /// return or throw <see cref="OperationCanceledException"/> within <paramref name="within"/> (default 1 s).
    /// </summary>
    /// <returns>Whether the probe was still waiting when it was cancelled (a probe that finished first had nothing to cancel).</returns>
    public static async Task<CancellationCheck> AssertHonoursCancellationAsync(IProbe probe, TimeSpan? within = null, Func<bool>? engaged = null)
    {
        var limit = within ?? TimeSpan.FromSeconds(1);
        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            var early = Run(probe, cancelled.Token);
            if (!await FinishesWithin(early, limit))
                throw new ConformanceException([$"with its token already cancelled, the probe did not return within {limit.TotalSeconds}s: check the token before you start, and pass it to every await"]);
        }

        using var cts = new CancellationTokenSource();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var task = Run(probe, cts.Token);
        var settle = TimeSpan.FromMilliseconds(300);
        while (!task.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(10) && !(engaged?.Invoke() ?? clock.Elapsed >= settle))
            await Task.WhenAny(task, Task.Delay(10));
        if (task.IsCompleted)
        {
            await task;
            return new CancellationCheck(Waited: false, clock.Elapsed);
        }
        var cancelledAt = clock.Elapsed;
        await cts.CancelAsync();
        if (!await FinishesWithin(task, limit))
            throw new ConformanceException([$"the probe ignored cancellation while it waited on its target: still running {limit.TotalSeconds}s after its token was cancelled; pass the token to every await (connect, send, read, process exit)"]);
        return new CancellationCheck(Waited: true, clock.Elapsed - cancelledAt);
    }

    private static Task Run(IProbe probe, CancellationToken token) => Task.Run(async () =>
    {
        try { await probe.CheckAsync(Context(null), token); }
        catch (OperationCanceledException) { }
    });

    private static async Task<bool> FinishesWithin(Task task, TimeSpan limit)
    {
        if (await Task.WhenAny(task, Task.Delay(limit)) != task) return false;
        await task;
        return true;
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
