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

/// <summary>
/// Where the engine keeps what must outlive it: rule state, incidents and the outbox, in one database so that a state
/// change and the messages it causes are written together. The embedded SQLite file, or the PostgreSQL database the
/// nodes of a cluster share; the same test suite runs over both.
/// </summary>
internal interface IEngineStore : IStateStore, INotificationStore;
