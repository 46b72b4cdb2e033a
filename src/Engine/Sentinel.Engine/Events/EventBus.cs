using System.Collections.Immutable;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Events;

/// <summary>
/// In-process bus: publishers never wait for subscribers; each subscriber gets every event in order, and a
/// subscriber that throws is logged and does not affect the others (Serilog's SafeAggregateSink, in spirit).
/// </summary>
internal sealed partial class EventBus : IAsyncDisposable
{
    private readonly Channel<EngineEvent> _channel = Channel.CreateUnbounded<EngineEvent>(new() { SingleReader = true });
    private readonly ILogger _logger;
    private readonly Task _pump;
    private ImmutableList<Func<EngineEvent, CancellationToken, ValueTask>> _subscribers = [];
    private readonly CancellationTokenSource _stop = new();

    public EventBus(ILogger logger)
    {
        _logger = logger;
        _pump = Task.Run(PumpAsync);
    }

    public void Publish(EngineEvent e) => _channel.Writer.TryWrite(e);

    /// <summary>Completes once every event published before the call has been handled by every subscriber.</summary>
    public Task DrainAsync()
    {
        var barrier = new Barrier();
        return _channel.Writer.TryWrite(barrier) ? barrier.Reached.Task : Task.CompletedTask;
    }

    // Not an event: a mark in the queue that says when the pump has got this far.
    private sealed record Barrier() : EngineEvent(default(DateTimeOffset))
    {
        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public IDisposable Subscribe(Func<EngineEvent, CancellationToken, ValueTask> handler)
    {
        ImmutableInterlocked.Update(ref _subscribers, l => l.Add(handler));
        return new Unsubscriber(() => ImmutableInterlocked.Update(ref _subscribers, l => l.Remove(handler)));
    }

    private async Task PumpAsync()
    {
        await foreach (var e in _channel.Reader.ReadAllAsync())
        {
            if (e is Barrier barrier)
            {
                barrier.Reached.TrySetResult();
                continue;
            }
            foreach (var handler in _subscribers)
            {
                try { await handler(e, _stop.Token); }
                catch (Exception ex) { LogSubscriberFailed(_logger, e.GetType().Name, ex); }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_channel.Writer.TryComplete()) return;
        await Task.WhenAny(_pump, Task.Delay(TimeSpan.FromSeconds(5)));
        while (_channel.Reader.TryRead(out var left))
            if (left is Barrier barrier) barrier.Reached.TrySetResult();
        _stop.Cancel();
        _stop.Dispose();
    }

    private sealed class Unsubscriber(Action action) : IDisposable
    {
        private Action? _action = action;
        public void Dispose() => Interlocked.Exchange(ref _action, null)?.Invoke();
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Error, Message = "An event subscriber failed on {Event}")]
    private static partial void LogSubscriberFailed(ILogger logger, string @event, Exception ex);
}
