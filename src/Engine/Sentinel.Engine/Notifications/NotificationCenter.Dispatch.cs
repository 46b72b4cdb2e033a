using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Notifications;

// The dispatcher: sends what is due in batches per channel, retries, fails over, mutes in maintenance, reminds.
internal sealed partial class NotificationCenter
{
    // One send: two quick retries of a transient failure (the outbox retries later with backoff), each capped. Built
    // once and shared by every channel (a pipeline is stateless and thread-safe).
    private ResiliencePipeline? _sendPipeline;

    private ResiliencePipeline SendPipeline => _sendPipeline ??= new ResiliencePipelineBuilder { TimeProvider = _time }
        .AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = 2, Delay = TimeSpan.FromSeconds(1), BackoffType = DelayBackoffType.Exponential,
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not ActionFailedException { Permanent: true } && e is not OperationCanceledException),
        })
        .AddTimeout(SendCap)
        .Build();

    private void Wake() => _signal.TrySetResult();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var signal = _signal;
            TimeSpan wait;
            try { wait = await DispatchDueAsync(_stop.Token); }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
            catch (Exception ex)
            {
                LogDispatchFailed(_logger, ex);
                wait = TimeSpan.FromSeconds(5);
            }
            if (signal.Task.IsCompleted) { _signal = new(TaskCreationOptions.RunContinuationsAsynchronously); continue; }
            using var delay = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            await Task.WhenAny(signal.Task, Task.Delay(wait, _time, delay.Token));
            delay.Cancel();
            if (signal.Task.IsCompleted) Interlocked.CompareExchange(ref _signal, new(TaskCreationOptions.RunContinuationsAsynchronously), signal);
        }
    }

    /// <summary>Sends what is due; returns how long until something else is due.</summary>
    private async Task<TimeSpan> DispatchDueAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        List<(string Channel, List<OutboxMessage> Batch)> batches;
        await _gate.WaitAsync(ct);
        try
        {
            if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0) await CommitAsync(null, [], [], ct);
            await ReleaseMutedAsync(now, ct);
            await QueueRemindersAsync(now, ct);
            // During a rule's maintenance window only resolved messages go out; the rest wait for its end. A resolved
            // message never overtakes what it resolves (a down being retried, or sent again after a restart).
            bool Sendable(OutboxMessage m) => m.Status == OutboxStatus.Pending && m.SendingSince is null
                && (m.Item.Kind == NotificationKind.Resolved ? !_pending.Any(e => e.Id < m.Id && e.IncidentId == m.IncidentId && e.Channel == m.Channel && e.Status == OutboxStatus.Pending && TellsOutage(e))
                    : Muting(m.Rule, now) is null);
            batches = _pending.Where(m => Sendable(m) && m.DueAt <= now).Select(m => m.Channel).Distinct()
                .Select(c => (c, _pending.Where(m => m.Channel == c && Sendable(m) && (m.DueAt <= now || m.Groupable)).OrderBy(m => m.Id).ToList()))
                .ToList();
        }
        finally { _gate.Release(); }

        foreach (var (channel, batch) in batches) await SendAsync(channel, batch, ct);

        await _gate.WaitAsync(ct);
        try
        {
            var muted = _pending.Where(m => m.Status == OutboxStatus.Pending && m.Item.Kind != NotificationKind.Resolved)
                .Select(m => _host.Config.Maintenance.Where(w => w.Covers(m.Rule)).Select(w => w.OpenUntil(now)).OfType<DateTimeOffset>().DefaultIfEmpty(m.DueAt).Max());
            var next = _pending.Where(m => m.Status == OutboxStatus.Pending).Select(m => m.DueAt)
                .Concat(muted)
                .Concat(_open.Values.Select(NextReminder).OfType<DateTimeOffset>())
                .Concat(_open.Values.Select(MutedUntil).OfType<DateTimeOffset>())
                .Concat(_unwrittenIncidents.Count + _unwrittenMessages.Count > 0 ? [now + TimeSpan.FromSeconds(5)] : [])
                .DefaultIfEmpty(now + TimeSpan.FromMinutes(1)).Min();
            var wait = next - _time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : wait;
        }
        finally { _gate.Release(); }
    }

    private MaintenanceWindow? Muting(string rule, DateTimeOffset at) => World.Muting(rule, at);

    // Incidents opened during a maintenance window that has ended: alerted for now if their rule is still down.
    private async Task ReleaseMutedAsync(DateTimeOffset now, CancellationToken ct)
    {
        foreach (var incident in _open.Values.Where(i => i.MutedBy is not null).ToList())
            await ApplyAsync(IncidentPolicy.ReleaseMuted(World, incident, now), ct);
    }

    private DateTimeOffset? MutedUntil(Incident i)
        => i.MutedBy is null ? null : _host.Config.Maintenance.Where(w => w.Covers(i.Rule)).Select(w => w.OpenUntil(_time.GetUtcNow())).OfType<DateTimeOffset>().DefaultIfEmpty(_time.GetUtcNow()).Max();

    private DateTimeOffset? NextReminder(Incident i) => IncidentPolicy.NextReminder(World, i);

    private async Task QueueRemindersAsync(DateTimeOffset now, CancellationToken ct)
    {
        foreach (var incident in _open.Values.ToList()) await ApplyAsync(IncidentPolicy.Remind(World, incident, now), ct);
    }

    private async Task SendAsync(string channel, List<OutboxMessage> batch, CancellationToken ct)
    {
        (ChannelDefinition Def, string Key, IAction Action) target;
        bool found;
        lock (_channels) found = _channels.TryGetValue(channel, out target);
        var now = _time.GetUtcNow();
        if (!found)
        {
            await FinishAsync(batch, m => { m.Status = OutboxStatus.Expired; m.LastError = $"channel '{channel}' is no longer configured"; }, ct);
            LogExpired(_logger, batch.Count, channel, "the channel is no longer configured");
            _host.Delivered(channel, "expired", batch.Count, "the channel is no longer configured");
            return;
        }
        List<NotificationItem> items;
        await _gate.WaitAsync(ct);
        try
        {
            // Closed meanwhile (a resolved rule cancels what has not gone yet); what is left is marked as being
            // sent before it is handed over, so a kill during the send is known after the restart.
            batch.RemoveAll(m => m.Status != OutboxStatus.Pending);
            if (batch.Count == 0) return;
            foreach (var m in batch) m.SendingSince = now;
            if (_cluster is null) await CommitAsync(null, [], batch, ct);
            else
            {
                await ClaimAsync(batch, ct);
                if (batch.Count == 0) return;
            }
            items = batch.Select(m => m.Item.Kind is NotificationKind.Down or NotificationKind.Reminder or NotificationKind.Escalation or NotificationKind.GaveUp
                ? m.Item with { Suppressed = _open.Values.Where(i => i.SuppressedBy == m.Rule).Select(i => i.Rule).ToList() is { Count: > 0 } s ? s : null }
                : m.Item).ToList();
        }
        finally { _gate.Release(); }
        var notification = MessageComposer.Compose(items, target.Def.Template, now);
        var output = new ActionOutput(20);
        var context = new ActionContext
        {
            RuleName = batch.Count == 1 ? batch[0].Rule : $"{batch.Count} rules", Event = "notify", Message = notification.Text, Notification = notification,
            TimeProvider = _time, Logger = _logger, Output = output,
        };
        Exception? error = null;
        try
        {
            await SendPipeline.ExecuteAsync(async token => await target.Action.ExecuteAsync(context, token), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { throw; }
        catch (Exception ex) { error = ex; }

        now = _time.GetUtcNow();
        if (error is null)
        {
            await FinishAsync(batch, m => { m.Status = OutboxStatus.Sent; m.SentAt = now; m.Attempts++; }, ct, incident =>
            {
                if (!incident.Notified.Contains(channel)) incident.Notified.Add(channel);
                incident.LastNotifiedAt = now;
            });
            LogSent(_logger, batch.Count, channel, notification.Subject);
            _host.Delivered(channel, "sent", batch.Count, notification.Subject);
            return;
        }
        var permanent = error is ActionFailedException { Permanent: true };
        var message = error is Polly.Timeout.TimeoutRejectedException ? $"no answer within {Duration.Format(SendCap)}" : error.Message;
        LogSendFailed(_logger, channel, permanent ? "permanent" : "will retry", message);
        var fallback = target.Def.Fallback;
        var moved = new List<OutboxMessage>();
        await FinishAsync(batch, m =>
        {
            m.Attempts++;
            m.FirstAttemptAt ??= now;
            m.LastError = message;
            if (now - m.CreatedAt >= target.Def.GiveUpAfter) { m.Status = OutboxStatus.Expired; return; }
            if (fallback is not null && (permanent || now - m.FirstAttemptAt >= target.Def.FailoverAfter))
            {
                m.Status = OutboxStatus.FailedOver;
                moved.Add(new OutboxMessage
                {
                    Id = _book.NextMessageId(), IncidentId = m.IncidentId, Rule = m.Rule, Channel = fallback, Item = m.Item, CreatedAt = now, DueAt = now,
                    FailedOverFrom = channel,
                });
                return;
            }
            if (permanent) { m.Status = OutboxStatus.Expired; return; }
            var backoff = TimeSpan.FromSeconds(Math.Min(RetryMax.TotalSeconds, 5 * Math.Pow(2, Math.Min(m.Attempts - 1, 10))));
            m.DueAt = now + backoff;
        }, ct, extra: moved);
        var expired = batch.Count(m => m.Status == OutboxStatus.Expired);
        var retried = batch.Count(m => m.Status == OutboxStatus.Pending);
        if (retried > 0) _host.Delivered(channel, "failed", retried, $"{message} (will retry)");
        if (moved.Count > 0) _host.Delivered(channel, "failed-over", moved.Count, $"{message} (sent to {fallback} instead)");
        if (expired > 0) _host.Delivered(channel, "expired", expired, message);
        if (expired > 0) LogExpired(_logger, expired, channel, message);
        if (moved.Count > 0) LogFailedOver(_logger, moved.Count, channel, fallback!);
    }

    private async Task FinishAsync(List<OutboxMessage> batch, Action<OutboxMessage> update, CancellationToken ct, Action<Incident>? onIncident = null, List<OutboxMessage>? extra = null)
    {
        // What a channel did is recorded even while Sentinel stops: a delivered message must not be sent again.
        ct = CancellationToken.None;
        await _gate.WaitAsync(ct);
        try
        {
            var incidents = new List<Incident>();
            foreach (var m in batch)
            {
                m.SendingSince = null;
                update(m);
                if (onIncident is not null && m.IncidentId is { } id && TellsOutage(m))
                {
                    var incident = _open.Values.FirstOrDefault(i => i.Id == id);
                    if (incident is not null) { onIncident(incident); if (!incidents.Contains(incident)) incidents.Add(incident); }
                    else if (m.Status == OutboxStatus.Sent && IncidentPolicy.ResolvedAfterTheFact(_book, World, m, _time.GetUtcNow()) is { } resolved) (extra ??= []).Add(resolved);
                }
            }
            if (extra is not null) _book.Number(extra);
            await CommitAsync(null, incidents, [.. batch, .. extra ?? []], ct);
        }
        finally { _gate.Release(); }
        if (extra is { Count: > 0 }) Wake();
    }
}
