using System.Collections.Immutable;
using System.Threading.Channels;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Events;

/// <summary>One line of the engine's recent activity (the status page's "last events", the API's event stream).</summary>
internal sealed record ActivityEntry(long Id, DateTimeOffset At, string Kind, string? Rule, string Message);

/// <summary>
/// The last events in memory (transitions, remediation, notifications, config changes), and their live stream for
/// server-sent events: each listener has a bounded queue, so a slow reader loses its oldest lines, never slows the engine.
/// </summary>
internal sealed class ActivityLog
{
    private readonly int _size;
    private readonly Queue<ActivityEntry> _recent = new();
    private readonly Lock _lock = new();
    private ImmutableList<Channel<ActivityEntry>> _listeners = [];
    private long _nextId;

    public ActivityLog(int size = 200) => _size = size;

    public ValueTask OnEventAsync(EngineEvent e, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case RuleTransition t:
                Add(t.When, "transition", t.Rule, $"{Name(t.From)} → {Name(t.To)}" + (t.Check?.Description is { Length: > 0 } d && t.To != RuleStatus.Paused ? ": " + d : ""));
                break;
            case RemediationEvent r:
                Add(r.When, r.Name, r.Rule, r.Message);
                break;
            case ConfigApplied c when c.Added.Count + c.Changed.Count + c.Removed.Count > 0:
                Add(c.When, "config-applied", null, $"configuration applied: {c.Added.Count} added, {c.Changed.Count} changed, {c.Removed.Count} removed");
                break;
            case ConfigRejected c:
                Add(c.When, "config-rejected", null, $"configuration change rejected ({c.Errors.Count} errors; the running one stays): {c.Errors[0]}");
                break;
            case StateWriteFailed f:
                Add(f.When, "state-unwritable", null, $"{f.Reason}: kept in memory until it can be written");
                break;
            case StateWriteRecovered r:
                Add(r.When, "state-writable", null, $"written again after {Duration.Format(r.When - r.Since)}; nothing was lost");
                break;
        }
        return ValueTask.CompletedTask;
    }

    private static string Name(RuleStatus s) => s.ToString().ToLowerInvariant();

    public void Add(DateTimeOffset at, string kind, string? rule, string message)
    {
        ActivityEntry entry;
        lock (_lock)
        {
            entry = new ActivityEntry(++_nextId, at, kind, rule, message);
            _recent.Enqueue(entry);
            while (_recent.Count > _size) _recent.Dequeue();
        }
        foreach (var l in _listeners) l.Writer.TryWrite(entry);
    }

    /// <summary>The newest entries, newest first.</summary>
    public IReadOnlyList<ActivityEntry> Recent(int count)
    {
        lock (_lock) return _recent.Reverse().Take(count).ToList();
    }

    /// <summary>
    /// Every entry from now on: the listener is registered by this call (not at the first read), so a caller that
    /// writes something before it reads (an event stream's preamble) misses nothing added meanwhile.
    /// </summary>
    public ActivityListener Listen()
    {
        var channel = Channel.CreateBounded<ActivityEntry>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        ImmutableInterlocked.Update(ref _listeners, l => l.Add(channel));
        return new ActivityListener(channel.Reader, () => ImmutableInterlocked.Update(ref _listeners, l => l.Remove(channel)));
    }
}

/// <summary>The entries added to an <see cref="ActivityLog"/> since <see cref="ActivityLog.Listen"/>; dispose to stop.</summary>
internal sealed class ActivityListener(ChannelReader<ActivityEntry> reader, Action stop) : IDisposable
{
    private Action? _stop = stop;

    public ChannelReader<ActivityEntry> Reader { get; } = reader;

    public void Dispose() => Interlocked.Exchange(ref _stop, null)?.Invoke();
}
