using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Logs;

/// <summary>
/// Scans only what was appended since the previous check. Offsets are kept in the rule's durable state, so a
/// restart neither rescans nor misses lines. Follows rotation both ways: copy-truncate (the file shrinks) and
/// rename-and-create (a new inode: the old file is read to its end first, then the new one from its start).
/// Only whole lines are judged; a partial last line waits for its newline.
/// </summary>
internal sealed class LogRegexProbe : IProbe, IDisposable
{
    private const int Chunk = 64 * 1024;
    private readonly LogRegexProbeOptions _options;
    private readonly Regex _pattern;
    private readonly Regex[] _ignore;
    private readonly Dictionary<string, Tracker> _trackers = new(StringComparer.Ordinal);
    private readonly Queue<DateTimeOffset> _matchTimes = new();
    private string? _lastMatch;

    public LogRegexProbe(LogRegexProbeOptions options)
    {
        _options = options;
        var flags = RegexOptions.CultureInvariant | (options.IgnoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
        _pattern = new Regex(options.Pattern!, flags, TimeSpan.FromSeconds(1));
        _ignore = options.Ignore.Select(i => new Regex(i, flags, TimeSpan.FromSeconds(1))).ToArray();
    }

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var now = context.TimeProvider.GetUtcNow();
        var files = Files();
        if (files.Count == 0)
            return ValueTask.FromResult(ProbeResult.Unhealthy($"missing: no file matches {_options.Path}", null, new Dictionary<string, object> { ["missing"] = true }));

        long scanned = 0, budget = _options.MaxReadPerCheck.Bytes;
        var matches = 0;
        foreach (var path in files)
        {
            var tracker = Track(path, context.State);
            if (tracker is null) continue;
            (var m, var bytes) = tracker.Scan(this, budget, cancellationToken);
            matches += m;
            scanned += bytes;
            budget -= bytes;
            context.State.Set("file:" + path, tracker.Checkpoint());
        }
        foreach (var gone in _trackers.Keys.Except(files).ToList())
        {
            _trackers[gone].Dispose();
            _trackers.Remove(gone);
            context.State.Set("file:" + gone, null);
        }

        int count;
        if (_options.Window is { } window)
        {
            for (var i = 0; i < matches; i++) _matchTimes.Enqueue(now);
            while (_matchTimes.Count > 0 && now - _matchTimes.Peek() > window) _matchTimes.Dequeue();
            count = _matchTimes.Count;
        }
        else count = matches;

        var data = new Dictionary<string, object> { ["matches"] = count, ["bytes-scanned"] = new ByteSize(scanned), ["files"] = files.Count };
        if (_lastMatch is not null) data["last-match"] = _lastMatch;
        var span = _options.Window is { } win ? $"in the last {Format(win)}" : "since the previous check";
        return ValueTask.FromResult(count >= _options.MinMatches
            ? ProbeResult.Unhealthy($"{count} line(s) matching '{_options.Pattern}' {span}; last: {_lastMatch}", null, data)
            : ProbeResult.Healthy(count == 0 ? $"no line matching '{_options.Pattern}' {span}" : $"{count} line(s) matching {span}, fewer than {_options.MinMatches}", data));
    }

    private List<string> Files()
    {
        var path = _options.Path!;
        var name = System.IO.Path.GetFileName(path);
        if (name.IndexOfAny(['*', '?']) < 0) return File.Exists(path) ? [path] : [];
        var dir = System.IO.Path.GetDirectoryName(path);
        dir = string.IsNullOrEmpty(dir) ? "." : dir;
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir, name).Order(StringComparer.Ordinal).ToList() : [];
    }

    private Tracker? Track(string path, IProbeState state)
    {
        var inode = FileIdentity.Inode(path);
        if (inode is null) return null;
        if (_trackers.TryGetValue(path, out var tracker))
        {
            if (tracker.Inode != inode) tracker.Rotate(inode.Value);
            return tracker;
        }
        var length = new FileInfo(path).Length;
        long offset = _options.FromStart ? 0 : length;
        // After a restart, resume where the previous run stopped, if it is still the same file.
        if (state.Get("file:" + path) is { } saved && Tracker.TryParse(saved, out var savedInode, out var savedOffset))
            offset = savedInode == inode ? (savedOffset <= length ? savedOffset : 0) : 0;
        tracker = new Tracker(path, inode.Value, offset);
        _trackers[path] = tracker;
        return tracker;
    }

    private bool Counts(string line)
    {
        if (!_pattern.IsMatch(line) || _ignore.Any(i => i.IsMatch(line))) return false;
        _lastMatch = line.Length > 500 ? line[..497] + "..." : line;
        return true;
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{t.TotalHours:0.#}h" : t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#}m" : $"{t.TotalSeconds:0.#}s";

    public void Dispose()
    {
        foreach (var t in _trackers.Values) t.Dispose();
        _trackers.Clear();
    }

    private sealed class Tracker(string path, ulong inode, long offset) : IDisposable
    {
        private FileStream? _stream;
        private FileStream? _rotated;   // the previous file, renamed away: read to its end before the new one
        private long _rotatedOffset;
        private readonly MemoryStream _partial = new();

        public ulong Inode { get; private set; } = inode;
        public long Offset { get; private set; } = offset;

        public string Checkpoint() => $"{Inode.ToString(CultureInfo.InvariantCulture)}:{Offset.ToString(CultureInfo.InvariantCulture)}";

        public static bool TryParse(string s, out ulong inode, out long offset)
        {
            offset = 0;
            var colon = s.IndexOf(':');
            return ulong.TryParse(s.AsSpan(0, Math.Max(colon, 0)), CultureInfo.InvariantCulture, out inode)
                & long.TryParse(s.AsSpan(colon + 1), CultureInfo.InvariantCulture, out offset);
        }

        public void Rotate(ulong newInode)
        {
            _rotated?.Dispose();
            _rotated = _stream;   // still open on the old inode, wherever it was renamed to
            _rotatedOffset = Offset;
            _stream = null;
            Inode = newInode;
            Offset = 0;
        }

        public (int Matches, long Bytes) Scan(LogRegexProbe probe, long budget, CancellationToken ct)
        {
            var matches = 0;
            long bytes = 0;
            if (_rotated is not null)
            {
                (matches, bytes, _rotatedOffset) = Read(probe, _rotated, _rotatedOffset, budget, ct);
                if (_rotatedOffset >= _rotated.Length)
                {
                    Flush(probe, ref matches);   // the old file's unterminated last line is complete now
                    _rotated.Dispose();
                    _rotated = null;
                }
                else return (matches, bytes);
            }
            try { _stream ??= new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return (matches, bytes); }
            if (_stream.Length < Offset)
            {
                Offset = 0;           // copy-truncate: the file was emptied and starts again
                _partial.SetLength(0);
            }
            var (m, b, offset) = Read(probe, _stream, Offset, budget - bytes, ct);
            Offset = offset;
            return (matches + m, bytes + b);
        }

        private (int Matches, long Bytes, long Offset) Read(LogRegexProbe probe, FileStream stream, long offset, long budget, CancellationToken ct)
        {
            var matches = 0;
            long read = 0;
            var buffer = new byte[Chunk];
            var maxLine = (int)probe._options.MaxLine.Bytes;
            _partial.SetLength(0);   // every read starts at the beginning of a line (the offset never passes an unterminated one)
            stream.Seek(offset, SeekOrigin.Begin);
            while (read < budget)
            {
                ct.ThrowIfCancellationRequested();
                var n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, budget - read));
                if (n == 0) break;
                read += n;
                var start = 0;
                for (var i = 0; i < n; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    _partial.Write(buffer, start, i - start);
                    if (LineDone(probe)) matches++;
                    start = i + 1;
                }
                _partial.Write(buffer, start, n - start);
                // Garbage without newlines: judge it in pieces rather than hold it forever.
                if (_partial.Length >= maxLine && LineDone(probe)) matches++;
            }
            // The offset stays at the start of an unterminated line, so a restart reads it whole.
            return (matches, read, offset + read - _partial.Length);
        }

        private void Flush(LogRegexProbe probe, ref int matches)
        {
            if (_partial.Length > 0 && LineDone(probe)) matches++;
        }

        private bool LineDone(LogRegexProbe probe)
        {
            var length = (int)Math.Min(_partial.Length, probe._options.MaxLine.Bytes);
            var span = _partial.GetBuffer().AsSpan(0, length);
            if (span.Length > 0 && span[^1] == (byte)'\r') span = span[..^1];
            var line = Encoding.UTF8.GetString(span);
            _partial.SetLength(0);
            return probe.Counts(line);
        }

        public void Dispose()
        {
            _stream?.Dispose();
            _rotated?.Dispose();
        }
    }
}
