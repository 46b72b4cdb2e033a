using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Model;

/// <summary>
/// Durable rule state. The embedded implementation is an SQLite file; a PostgreSQL store implements the same
/// contract for cluster mode.
/// </summary>
internal interface IStateStore : IAsyncDisposable
{
    Task<IReadOnlyDictionary<string, RuleState>> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Writes the given states and deletes the removed rules, atomically.</summary>
    Task SaveAsync(IReadOnlyCollection<RuleState> states, IReadOnlyCollection<string> removed, CancellationToken cancellationToken);
}
