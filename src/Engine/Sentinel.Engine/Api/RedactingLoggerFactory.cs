using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Api;

/// <summary>
/// The log's side of the one choke point for secrets: every log line Sentinel writes (console, journal, log file)
/// goes through this factory, which replaces each configured secret in the line's values and its exception with
/// <c>***</c> before the real logger sees it. The template and the structure stay (a value is replaced, not the line),
/// so the JSON log keeps its fields. <see cref="Redactor"/> is read at each line: a reloaded config's secrets count.
/// </summary>
internal sealed class RedactingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>The running configuration's secrets (set once the engine exists).</summary>
    public Func<Redactor> Redactor { get; set; } = () => Api.Redactor.Empty;

    public ILogger CreateLogger(string categoryName) => new RedactingLogger(inner.CreateLogger(categoryName), this);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() { }

    private sealed class RedactingLogger(ILogger inner, RedactingLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel)) return;
            var redactor = owner.Redactor();
            if (redactor.IsEmpty) { inner.Log(logLevel, eventId, state, exception, formatter); return; }
            var shownError = exception?.ToString();
            var error = shownError is not null && redactor.Apply(shownError) is var shown && !ReferenceEquals(shown, shownError)
                ? new RedactedException(exception!, shown) : exception;
            if (state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                var changed = false;
                var copy = new KeyValuePair<string, object?>[values.Count];
                for (var i = 0; i < values.Count; i++)
                {
                    var (key, value) = values[i];
                    // Numbers and flags hold no secret; the template is the code's own text.
                    var text = key == "{OriginalFormat}" ? null : value switch { null or IFormattable or bool => null, string s => s, _ => value.ToString() };
                    var safe = text is null ? text : redactor.Apply(text);
                    if (safe != text) { changed = true; copy[i] = new(key, safe); }
                    else copy[i] = values[i];
                }
                if (changed || !ReferenceEquals(error, exception))
                {
                    var rendered = redactor.Apply(formatter(state, exception));
                    inner.Log(logLevel, eventId, new Values(copy, rendered), error, static (s, _) => s.Rendered);
                    return;
                }
                inner.Log(logLevel, eventId, state, exception, formatter);
                return;
            }
            var message = formatter(state, exception);
            var redacted = redactor.Apply(message);
            if (redacted == message && ReferenceEquals(error, exception)) inner.Log(logLevel, eventId, state, exception, formatter);
            else inner.Log(logLevel, eventId, redacted, error, static (s, _) => s);
        }
    }

    // The state a structured logger reads: the same keys (and template), with the redacted values.
    private sealed class Values(KeyValuePair<string, object?>[] items, string rendered) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public string Rendered { get; } = rendered;
        public KeyValuePair<string, object?> this[int index] => items[index];
        public int Count => items.Length;
        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)items).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => items.GetEnumerator();
        public override string ToString() => Rendered;
    }

    /// <summary>An exception as the log shows it: its text with the secrets replaced (type and stack kept in the text).</summary>
    private sealed class RedactedException(Exception original, string shown) : Exception(original.GetType().FullName + " (secrets redacted)")
    {
        public override string ToString() => shown;
        public override string? StackTrace => null;
    }
}
