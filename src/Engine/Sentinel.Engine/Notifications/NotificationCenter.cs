using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Notifications;

/// <summary>
/// Incidents and the outbox. A rule going down opens an incident and writes its messages (one per channel; later
/// ones for escalations) to the outbox in the same transaction as the rule's state; a dispatcher sends what is due,
/// groups what opens together, retries with backoff, fails over to a channel's fallback, and marks a message sent
/// only once its channel accepted it. Every channel that was told of an incident is told it is resolved.
/// </summary>
internal sealed partial class NotificationCenter : IAsyncDisposable
{
    private static readonly TimeSpan RetryMax = TimeSpan.FromMinutes(5);
    internal static readonly TimeSpan SendCap = TimeSpan.FromMinutes(2);

    private readonly INotificationStore _store;
    private readonly INotificationHost _host;
    // Builds a channel's action (the engine's plugin activator): the notification center never builds plugins itself.
    private readonly Func<string, ActionDefinition, IAction> _createAction;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IncidentBook _book = new();
    private Dictionary<string, Incident> _open => _book.Open;
    private List<OutboxMessage> _pending => _book.Pending;
    private readonly Dictionary<string, (ChannelDefinition Def, string Key, IAction Action)> _channels = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;
    private const string Writer = "outbox";
    private readonly State.StateWriteMonitor? _writes;
    private readonly HashSet<Incident> _unwrittenIncidents = [];
    private readonly HashSet<OutboxMessage> _unwrittenMessages = [];
    // The shared store of a cluster (null on one box): rules taken over from other nodes, messages claimed before a send.
    private IClusterStore? _cluster;

    public NotificationCenter(INotificationStore store, INotificationHost host, Func<string, ActionDefinition, IAction> createAction, TimeProvider time, ILoggerFactory loggers,
        State.StateWriteMonitor? writes = null)
    {
        _writes = writes;
        _store = store;
        _host = host;
        _createAction = createAction;
        _time = time;
        _logger = loggers.CreateLogger("Sentinel.Notifications");
    }

    private TimeSpan GroupWait => _host.Config.GroupWait;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _store.LoadNotificationsAsync(cancellationToken);
        foreach (var i in snapshot.Open) _open[i.Rule] = i;
        _pending.AddRange(snapshot.Pending);
        _book.Counts = snapshot.Counts;
        _book.LastIncident = snapshot.MaxIncidentId;
        _book.LastMessage = snapshot.MaxMessageId;
        _cluster = _store as IClusterStore;
        if (_cluster is not null) _book.ReserveIds = _cluster.ReserveIds;
        ApplyChannels(_host.Config);
        await RecoverInFlightAsync(_pending, cancellationToken);
        foreach (var gone in _open.Keys.Where(r => r != EngineRule && _host.Config.Rules.All(d => d.Name != r) && _host.Config.Waiting.All(w => w.Name != r)).ToList())
            await DecideAsync((book, world) => IncidentPolicy.CloseRemoved(book, world, gone, _time.GetUtcNow()), cancellationToken);
        // In a cluster, a rule's state and incident are put together when this node takes the rule over (AdoptAsync):
        // the states loaded now may be another node's.
        if (_cluster is null) await ReconcileAsync(_host.Config.Rules, cancellationToken);
        // Stopped while its state could not be written; started, it could read it, and writes it again now.
        await DecideAsync((book, world) => IncidentPolicy.Close(book, world, EngineRule, null, _time.GetUtcNow(), "Sentinel restarted and writes its state again"), cancellationToken);
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The incident of Sentinel itself (its state cannot be written): not a rule name (those start with a letter or digit).</summary>
    internal const string EngineRule = IncidentPolicy.EngineRule;

    // A rule's state and its incident have different writers: the state persister writes a transition at once, the
    // incident is written when the transition's event is handled. A kill between the two leaves a rule down with no
    // incident (its outage would never be told) or healthy with one open (its resolved message would never go). Each
    // start puts them together again.
    private async Task ReconcileAsync(IEnumerable<RuleDefinition> rules, CancellationToken ct)
    {
        foreach (var def in rules)
        {
            var state = _host.GetState(def.Name);
            if (state is { Status: RuleStatus.Down } && def.AlertOn.Contains(AlertOn.Down) && !_open.ContainsKey(def.Name))
            {
                LogReconciled(_logger, def.Name, "down with no incident: opening one");
                await DecideAsync((book, world) => IncidentPolicy.Open(book, world, def, NotificationKind.Down, state.LastCheck?.Description, state.Since, IncidentPolicy.SeenLines(state.LastCheck)), ct);
            }
            else if (state is { Status: RuleStatus.Healthy or RuleStatus.Paused } && _open.ContainsKey(def.Name))
            {
                LogReconciled(_logger, def.Name, $"{state.Status.ToString().ToLowerInvariant()} with an open incident: resolving it");
                await DecideAsync((book, world) => IncidentPolicy.Close(book, world, def.Name, def, state.Since, state.Status == RuleStatus.Paused ? "paused" : state.LastCheck?.Description), ct);
            }
        }
    }

    // What does not say "resolved" tells the channel of its incident (down, gave-up, escalation, reminder, exited...).
    private static bool TellsOutage(OutboxMessage m) => NotificationKind.TellsOutage(m.Item.Kind);

    // Messages that were being sent when Sentinel was killed: they may have arrived, or not. One about an open incident
    // is sent again (at most that one message arrives twice); its channel counts as told once it is delivered, and if
    // the incident closes first, gets a BRIEFLY DOWN (right whether or not the first copy arrived). One about an
    // incident that closed meanwhile is not repeated (a DOWN for an outage that is over): it counts as delivered, and
    // its channel gets the message that closes it now (BRIEFLY DOWN, or RESOLVED if it had been told before).
    // Anything else (a resolved message) is sent again.
    private async Task RecoverInFlightAsync(IEnumerable<OutboxMessage> found, CancellationToken ct)
    {
        var unconfirmed = found.Where(m => m.SendingSince is not null).ToList();
        if (unconfirmed.Count == 0) return;
        var now = _time.GetUtcNow();
        var closing = new List<OutboxMessage>();
        var closedIds = unconfirmed.Where(m => TellsOutage(m) && m.IncidentId is { } id && _open.Values.All(i => i.Id != id)).Select(m => m.IncidentId!.Value).ToHashSet();
        var written = await _store.MessagesForAsync(closedIds, ct);
        var closed = closedIds.Count == 0 ? [] : (await _store.RecentIncidentsAsync(1000, ct)).Where(i => closedIds.Contains(i.Id)).ToDictionary(i => i.Id);
        foreach (var m in unconfirmed)
        {
            m.SendingSince = null;
            m.DueAt = now;
            if (!TellsOutage(m) || m.IncidentId is not { } id || !closedIds.Contains(id))
            {
                LogUnconfirmed(_logger, m.Id, m.Channel, m.Item.Kind, m.Rule, "it is sent again (it may arrive twice)");
                continue;
            }
            LogUnconfirmed(_logger, m.Id, m.Channel, m.Item.Kind, m.Rule, "its incident is over: it counts as delivered, and the message that closes it follows");
            m.Status = OutboxStatus.Sent;
            m.LastError = "handed to the channel when Sentinel stopped; not confirmed";
            if (written.Concat(closing).Any(w => w.IncidentId == id && w.Channel == m.Channel && w.Item.Kind is NotificationKind.Resolved or NotificationKind.BrieflyDown)) continue;
            if (closed.GetValueOrDefault(id) is { ClosedAt: { } end } incident && !incident.Notified.Contains(m.Channel))
            {
                var briefly = IncidentPolicy.BrieflyDown(World, incident, m.Rule, m.Channel, end, m.Item.Output);
                briefly.DueAt = now;
                closing.Add(briefly);
            }
            else if (IncidentPolicy.ResolvedAfterTheFact(_book, World, m, now) is { } resolved) closing.Add(resolved);
        }
        _book.Number(closing);
        await CommitAsync(null, [], [.. unconfirmed, .. closing], ct);
    }

    /// <summary>Creates the channels of a (new) configuration; unchanged channels keep their instance.</summary>
    public void ApplyChannels(SentinelConfig config)
    {
        lock (_channels)
        {
            var keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var def in config.Channels)
            {
                var key = def.Type.Name + "@" + def.Type.Generation + JsonSerializer.Serialize(def.Options, def.Options.GetType(), SentinelJson.Options);
                keep.Add(def.Name);
                if (_channels.TryGetValue(def.Name, out var existing) && existing.Key == key) { _channels[def.Name] = (def, key, existing.Action); continue; }
                var action = _createAction("channel " + def.Name, new ActionDefinition(def.Type, def.Options, def.Location));
                if (existing.Action is IDisposable d) d.Dispose();
                _channels[def.Name] = (def, key, action);
            }
            foreach (var name in _channels.Keys.Where(k => !keep.Contains(k)).ToList())
            {
                if (_channels[name].Action is IDisposable d) d.Dispose();
                _channels.Remove(name);
            }
        }
    }

    public NotificationStatus GetStatus()
    {
        _gate.Wait();
        try
        {
            return new NotificationStatus(_pending.Count(m => m.Status == OutboxStatus.Pending), _book.Counts.GetValueOrDefault(OutboxStatus.Sent),
                _book.Counts.GetValueOrDefault(OutboxStatus.FailedOver), _book.Counts.GetValueOrDefault(OutboxStatus.Expired),
                _open.Values.OrderBy(i => i.Id).Select(i => new IncidentView(i.Id, i.Rule, i.Cause, i.OpenedAt, i.AckedAt, i.SuppressedBy, [.. i.Notified], i.Description, i.MutedBy)).ToList());
        }
        finally { _gate.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null) { try { await _loop; } catch (OperationCanceledException) { } }
        // The last chance to write what a failing disk kept in memory; what still cannot be written is named.
        if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0)
        {
            await _gate.WaitAsync();
            try
            {
                await CommitAsync(null, [], [], CancellationToken.None);
                if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0) LogUnwrittenLost(_logger, _unwrittenMessages.Count, _unwrittenIncidents.Count);
            }
            finally { _gate.Release(); }
        }
        lock (_channels)
            foreach (var c in _channels.Values) (c.Action as IDisposable)?.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Notified {Channel} ({Count} messages): {Subject}")]
    private static partial void LogSent(ILogger logger, int count, string channel, string subject);

    [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "Channel {Channel} failed ({How}): {Error}")]
    private static partial void LogSendFailed(ILogger logger, string channel, string how, string error);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "{Count} messages for {Channel} go to its fallback {Fallback}")]
    private static partial void LogFailedOver(ILogger logger, int count, string channel, string fallback);

    [LoggerMessage(EventId = 603, Level = LogLevel.Error, Message = "{Count} messages for {Channel} could not be delivered and were dropped: {Reason}")]
    private static partial void LogExpired(ILogger logger, int count, string channel, string reason);

    [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} not alerted for: '{Parent}', which it depends on, is down")]
    private static partial void LogSuppressed(ILogger logger, string rule, long incident, string parent);

    [LoggerMessage(EventId = 608, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} not alerted for during maintenance window '{Window}'")]
    private static partial void LogMuted(ILogger logger, string rule, long incident, string window);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} resolved ({Messages} resolved messages)")]
    private static partial void LogResolved(ILogger logger, string rule, long incident, int messages);

    [LoggerMessage(EventId = 606, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} acknowledged: escalations and reminders stop")]
    private static partial void LogAcked(ILogger logger, string rule, long incident);

    [LoggerMessage(EventId = 609, Level = LogLevel.Warning, Message = "Message #{Id} ({Kind} of rule {Rule}) was being sent on {Channel} when Sentinel stopped, and may have arrived: {What}")]
    private static partial void LogUnconfirmed(ILogger logger, long id, string channel, string kind, string rule, string what);

    [LoggerMessage(EventId = 610, Level = LogLevel.Error, Message = "Stopping with {Messages} messages and {Incidents} incidents that could not be written (the state cannot be written): the next Sentinel will not know of them")]
    private static partial void LogUnwrittenLost(ILogger logger, int messages, int incidents);

    [LoggerMessage(EventId = 611, Level = LogLevel.Warning, Message = "Rule {Rule}: stopped between writing its state and its incident ({What})")]
    private static partial void LogReconciled(ILogger logger, string rule, string what);

    [LoggerMessage(EventId = 607, Level = LogLevel.Error, Message = "The notification dispatcher failed; it retries in 5s")]
    private static partial void LogDispatchFailed(ILogger logger, Exception ex);
}
