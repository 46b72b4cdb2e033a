using System.Collections.Immutable;

namespace Sentinel.Engine.Rules;

/// <summary>
/// The rules the engine runs and the rules waiting for a plugin, swapped as one when a configuration is applied:
/// a reader (status, API) never sees a rule in neither, or in both.
/// </summary>
internal sealed record RuleSet(ImmutableDictionary<string, RuleRuntime> Runtimes, IReadOnlyList<WaitingRule> Waiting)
{
    public static RuleSet Empty { get; } = new(ImmutableDictionary.Create<string, RuleRuntime>(StringComparer.Ordinal), []);
}
