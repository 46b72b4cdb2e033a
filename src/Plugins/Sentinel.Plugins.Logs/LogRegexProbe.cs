using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Logs;

/// <summary>
/// Scans only what was appended since the previous check. Offsets are kept in the rule's durable state, so a
/// restart neither rescans nor misses lines. Follows rotation both ways: copy-truncate (the file shrinks) and
/// rename-and-create (a new inode: the old file is read to its end first, then the new one from its start).
/// Only whole lines are judged; a partial last line waits for its newline.
/// </summary>
[ReportsEvents]
internal sealed class LogRegexProbe : IProbe, IDisposable
{
    private const int Chunk = 4 * 1024 * 1024;
    private readonly LogRegexProbeOptions _options;
    private readonly Regex _pattern;
    private readonly Regex _scanner;
    private readonly byte[][]? _literals;   // the pattern as plain UTF-8 strings, when it is only that: searched in raw bytes
    private readonly Regex[] _ignore;
    private readonly Dictionary<string, Tracker> _trackers = new(StringComparer.Ordinal);
    private readonly Queue<DateTimeOffset> _matchTimes = new();
    private string? _lastMatch;
    private readonly Regex _recordStart;
    private readonly List<string> _lines = [];   // what this check saw: matched lines and their context, capped
    private int _linesBytes;
    private const int MaxLines = 20, MaxLinesBytes = 4096;

    private static readonly Regex DefaultRecordStart = new(
        @"^\s*(\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|\[?(TRACE|DEBUG|INFO|INFORMATION|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT)\b)",
        RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    public LogRegexProbe(LogRegexProbeOptions options)
    {
        _options = options;
        var flags = RegexOptions.CultureInvariant | (options.IgnoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
        _pattern = new Regex(options.Pattern!, flags, TimeSpan.FromSeconds(1));
        // Finds candidate lines in a whole chunk at once (^ and $ at line ends); each candidate is then judged on its own.
        _scanner = new Regex(options.Pattern!, flags | RegexOptions.Multiline | RegexOptions.Compiled, TimeSpan.FromSeconds(10));
        _ignore = options.Ignore.Select(i => new Regex(i, flags, TimeSpan.FromSeconds(1))).ToArray();
        _literals = options.IgnoreCase ? null : Literals(options.Pattern!);
        _recordStart = options.RecordStart is { } r ? new Regex(r, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)) : DefaultRecordStart;
        // Where "from the end" is: the files as they are now, when the rule is created, not at its first check (up to
        // a period later): a Traceback written in between is new. A file that appears later is new as a whole.
        foreach (var path in Files())
            if (FileIdentity.Inode(path) is { } inode) _atCreation[path] = (inode, new FileInfo(path).Length);
    }

    private readonly Dictionary<string, (ulong Inode, long Length)> _atCreation = new(StringComparer.Ordinal);

    // Keeps a line for the alert, within the caps (lines are already cut to 500 characters).
    private void See(string line)
    {
        var cut = line.Length > 500 ? line[..497] + "..." : line;
        if (_lines.Count >= MaxLines || _linesBytes + cut.Length > MaxLinesBytes) return;
        _lines.Add(cut);
        _linesBytes += cut.Length;
    }

    // The lines after a match that belong to it: up to context-after, until one that starts a new record. Returns where
    // the shown context ends, so that a match inside it (a Traceback line after an ERROR line) is not shown twice.
    private int SeeContext(IEnumerable<(string Line, int End)> following, int end)
    {
        foreach (var (line, lineEnd) in following.Take(_options.ContextAfter))
        {
            if (_recordStart.IsMatch(line) || line.Length == 0) break;
            See(line);
            end = lineEnd;
        }
        return end;
    }

    private static IEnumerable<(string, int)> LinesAfter(string text, int end)
    {
        for (var start = end + 1; start < text.Length;)
        {
            var next = text.IndexOf('\n', start);
            if (next < 0) next = text.Length;
            yield return (text[start..next], next);
            start = next + 1;
        }
    }

    private static List<(string, int)> LinesAfter(ReadOnlySpan<byte> block, int end, int count)
    {
        var lines = new List<(string, int)>();
        for (var start = end + 1; start < block.Length && lines.Count < count;)
        {
            var next = block[start..].IndexOf((byte)'\n');
            var stop = next < 0 ? block.Length : start + next;
            var line = block[start..stop];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            lines.Add((Encoding.UTF8.GetString(line), stop));
            start = stop + 1;
        }
        return lines;
    }

    // "ERROR" or "ERROR|Traceback|FATAL": alternatives without regex syntax can be found with a vectorized byte search.
    private static byte[][]? Literals(string pattern)
    {
        var parts = pattern.Split('|');
        return parts.All(p => p.Length > 0 && Regex.Escape(p) == p) ? parts.Select(Encoding.UTF8.GetBytes).ToArray() : null;
    }

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var now = context.TimeProvider.GetUtcNow();
        var files = Files();
        if (files.Count == 0)
            return ValueTask.FromResult(ProbeResult.Unhealthy($"missing: no file matches {_options.Path}", null, new Dictionary<string, object> { ["missing"] = true }));

        long scanned = 0, budget = _options.MaxReadPerCheck.Bytes;
        var matches = 0;
        _lines.Clear();
        _linesBytes = 0;
        foreach (var path in files)
        {
            if (FileKind.NotRegular(path) is { } why)
                return ValueTask.FromResult(ProbeResult.Unhealthy($"{path} {why}", null, new Dictionary<string, object> { ["files"] = files.Count }));
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
        if (_lines.Count > 0) data["lines"] = _lines.ToList();
        var span = _options.Window is { } win ? $"in the last {PluginText.Duration(win)}" : "since the previous check";
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
        long offset = _options.FromStart ? 0 : _atCreation.TryGetValue(path, out var seen) && seen.Inode == inode && seen.Length <= length ? seen.Length : 0;
        string? rotated = null;
        Checkpoint? saved = state.Get("file:" + path) is { } text && Checkpoint.TryParse(text, out var cp) ? cp : null;
        if (saved is { } c)
        {
            // After a restart, resume where the previous run stopped if it is still the same file with the same lines
            // before the offset. Otherwise it was rotated while Sentinel was stopped: the lines written to the old file
            // after the stop are in the rotated copy (renamed: the same inode; copied, then truncated: the same bytes
            // before the offset), read from the offset first, then the new file from its start.
            offset = c.Inode == inode && c.Offset <= length && (c.Hash is null || Fingerprint(path, c.Offset) == c.Hash) ? c.Offset : 0;
            if (offset == 0 && c.Offset > 0) rotated = FindRotated(path, c);
        }
        tracker = new Tracker(path, inode.Value, offset);
        if (rotated is not null && saved is { } from) tracker.ResumeRotated(rotated, from.Offset);
        _trackers[path] = tracker;
        return tracker;
    }

    // The copy logrotate (or a bot's own rotation) left of a file, among its siblings: app.log.1, app.log-20261201, ...
    // Compressed copies are not read. The same inode is a rename; the same bytes before the offset, a copy.
    private static string? FindRotated(string path, Checkpoint saved)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var name = Path.GetFileName(path);
        List<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(dir)
                .Where(f => f != path && Path.GetFileName(f) is var n && n.Length > name.Length && n.StartsWith(name, StringComparison.Ordinal)
                    && n[name.Length] is '.' or '-' or '_' && !Compressed.Any(z => n.EndsWith(z, StringComparison.OrdinalIgnoreCase)))
                .Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        bool Long(string f) => FileKind.NotRegular(f) is null && new FileInfo(f).Length >= saved.Offset;
        return candidates.FirstOrDefault(f => FileIdentity.Inode(f) == saved.Inode && Long(f))
            ?? (saved.Hash is null ? null : candidates.FirstOrDefault(f => Long(f) && Fingerprint(f, saved.Offset) == saved.Hash));
    }

    private static readonly string[] Compressed = [".gz", ".xz", ".bz2", ".zst", ".zip", ".lz4"];

    private const int FingerprintBytes = 256;

    /// <summary>What identifies the lines read so far: a hash of the (up to) 256 bytes before <paramref name="offset"/>.</summary>
    private static string? Fingerprint(string path, long offset)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return Fingerprint(handle, offset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string Fingerprint(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset)
    {
        var n = (int)Math.Min(offset, FingerprintBytes);
        var bytes = new byte[n];
        var read = 0;
        while (read < n)
        {
            var got = RandomAccess.Read(handle, bytes.AsSpan(read), offset - n + read);
            if (got == 0) break;
            read += got;
        }
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, read)))[..16].ToLowerInvariant();
    }

    /// <summary>Where a file's reading stopped: its inode, the offset, and the fingerprint of the lines before it.</summary>
    private readonly record struct Checkpoint(ulong Inode, long Offset, string? Hash)
    {
        public override string ToString() => $"{Inode.ToString(CultureInfo.InvariantCulture)}:{Offset.ToString(CultureInfo.InvariantCulture)}"
            + (Hash is null ? "" : ":" + Hash);

        // inode:offset[:hash] (states written before the fingerprint have none).
        public static bool TryParse(string s, out Checkpoint checkpoint)
        {
            var parts = s.Split(':');
            checkpoint = default;
            if (parts.Length is < 2 or > 3 || !ulong.TryParse(parts[0], CultureInfo.InvariantCulture, out var inode)
                || !long.TryParse(parts[1], CultureInfo.InvariantCulture, out var offset)) return false;
            checkpoint = new Checkpoint(inode, offset, parts.Length == 3 ? parts[2] : null);
            return true;
        }
    }

    private bool Counts(string line, bool show)
    {
        if (!_pattern.IsMatch(line) || _ignore.Any(i => i.IsMatch(line))) return false;
        _lastMatch = line.Length > 500 ? line[..497] + "..." : line;
        if (show) See(line);
        return true;
    }

    /// <summary>Counts the matching lines in a block of whole lines.</summary>
    private int CountLines(ReadOnlySpan<byte> block)
    {
        if (block.IsEmpty) return 0;
        if (_literals is not null) return CountLiteralLines(block);
        // CRLF lines are judged without their \r, and the scan must agree: multiline $ stops only before \n.
        var text = Encoding.UTF8.GetString(block).Replace("\r\n", "\n", StringComparison.Ordinal);
        var count = 0;
        var next = 0;
        var shownUntil = -1;
        foreach (var m in _scanner.EnumerateMatches(text))
        {
            if (m.Index < next) continue;
            var start = m.Index == 0 ? 0 : text.LastIndexOf('\n', m.Index - 1) + 1;
            var end = text.IndexOf('\n', m.Index);
            if (end < 0) end = text.Length;
            if (Counts(text[start..end], show: start > shownUntil))
            {
                count++;
                if (_options.ContextAfter > 0 && start > shownUntil) shownUntil = SeeContext(LinesAfter(text, end), end);
            }
            next = end + 1;
        }
        return count;
    }

    private int CountLiteralLines(ReadOnlySpan<byte> block)
    {
        var count = 0;
        var position = 0;
        var shownUntil = -1;
        while (position < block.Length)
        {
            // The earliest occurrence of any alternative, then the whole line around it, judged as text.
            var rest = block[position..];
            var hit = -1;
            foreach (var literal in _literals!)
            {
                var at = hit < 0 ? rest.IndexOf(literal) : rest[..hit].IndexOf(literal);
                if (at >= 0) hit = at;
            }
            if (hit < 0) break;
            hit += position;
            var start = block[..hit].LastIndexOf((byte)'\n') + 1;
            var end = block[hit..].IndexOf((byte)'\n');
            end = end < 0 ? block.Length : hit + end;
            var line = block[start..end];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (Counts(Encoding.UTF8.GetString(line), show: start > shownUntil))
            {
                count++;
                if (_options.ContextAfter > 0 && start > shownUntil) shownUntil = SeeContext(LinesAfter(block, end, _options.ContextAfter), end);
            }
            position = end + 1;
        }
        return count;
    }

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
        private byte[] _buffer = [];
        private int _carry;             // bytes of an unterminated line at the start of _buffer

        public ulong Inode { get; private set; } = inode;
        public long Offset { get; private set; } = offset;

        private (long Offset, string Hash)? _fingerprint;

        /// <summary>Where reading stands, for the rule's state; the fingerprint is taken once per new offset.</summary>
        public string Checkpoint()
        {
            string? hash = null;
            if (_stream is not null && Offset > 0)
            {
                if (_fingerprint is not { } f || f.Offset != Offset) _fingerprint = (Offset, Fingerprint(_stream.SafeFileHandle, Offset));
                hash = _fingerprint.Value.Hash;
            }
            return new LogRegexProbe.Checkpoint(Inode, Offset, hash).ToString();
        }

        /// <summary>After a restart: the previous file, rotated away while Sentinel was stopped, is read from its offset first.</summary>
        public void ResumeRotated(string rotatedPath, long offset)
        {
            try { _rotated = new FileStream(rotatedPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
            _rotatedOffset = offset;
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
                if (_rotatedOffset + _carry >= _rotated.Length)
                {
                    matches += probe.CountLines(_buffer.AsSpan(0, _carry));   // the old file's unterminated last line is complete now
                    _rotated.Dispose();
                    _rotated = null;
                }
                else return (matches, bytes);
            }
            try { _stream ??= new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return (matches, bytes); }
            if (_stream.Length < Offset) Offset = 0;   // copy-truncate: the file was emptied and starts again
            var (m, b, offset) = Read(probe, _stream, Offset, budget - bytes, ct);
            Offset = offset;
            return (matches + m, bytes + b);
        }

        /// <summary>Reads from a line start; returns the offset of the first byte not judged (the start of an unterminated line).</summary>
        private (int Matches, long Bytes, long Offset) Read(LogRegexProbe probe, FileStream stream, long offset, long budget, CancellationToken ct)
        {
            var matches = 0;
            long read = 0;
            var maxLine = (int)probe._options.MaxLine.Bytes;
            if (_buffer.Length < Math.Max(Chunk, maxLine) * 2) _buffer = new byte[Math.Max(Chunk, maxLine) * 2];
            _carry = 0;
            stream.Seek(offset, SeekOrigin.Begin);
            long judged = offset;
            while (read < budget)
            {
                ct.ThrowIfCancellationRequested();
                var n = stream.Read(_buffer, _carry, (int)Math.Min(_buffer.Length - _carry, Math.Min(Chunk, budget - read)));
                if (n == 0) break;
                read += n;
                var data = _buffer.AsSpan(0, _carry + n);
                var lastNewline = data.LastIndexOf((byte)'\n');
                int consumed;
                if (lastNewline >= 0) consumed = lastNewline + 1;
                else if (data.Length >= maxLine) consumed = maxLine;   // garbage without newlines: judged in pieces
                else { _carry = data.Length; continue; }
                matches += probe.CountLines(data[..consumed]);
                judged += consumed;
                data[consumed..].CopyTo(_buffer);
                _carry = data.Length - consumed;
            }
            return (matches, read, judged);
        }

        public void Dispose()
        {
            _stream?.Dispose();
            _rotated?.Dispose();
        }
    }
}
