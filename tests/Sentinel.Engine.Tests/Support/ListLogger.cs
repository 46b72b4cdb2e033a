using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Tests.Support;

/// <summary>A logger that keeps what it was told, as "Level: message" lines, for tests that assert what is logged.</summary>
public sealed class ListLogger : ILogger
{
    private readonly List<string> _lines = [];
    public List<string> Lines { get { lock (_lines) return [.. _lines]; } }
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines) _lines.Add($"{logLevel}: {formatter(state, exception)}");
    }
}

/// <summary>Every logger it makes is <paramref name="logger"/>.</summary>
public sealed class ListLoggerFactory(ListLogger logger) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => logger;
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }
}
