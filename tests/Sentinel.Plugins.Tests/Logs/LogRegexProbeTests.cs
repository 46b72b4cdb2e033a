using System.Text;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Logs;

/// <summary>The `log-regex` probe on real files, appended to and rotated both ways while it runs.</summary>
public sealed class LogRegexProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sentinel-regex", Guid.NewGuid().ToString("N")[..10])).FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly MemoryProbeState _state = new();
    private string LogPath => Path.Combine(_dir, "bot.log");

    private IProbe Probe(string extra = "") => RealPlugins.Create("log-regex", $"{{ path: '{LogPath}', pattern: 'ERROR|Traceback'{extra} }}");

    private Task<ProbeResult> Check(IProbe probe) => probe.CheckAsync(new ProbeContext
    {
        RuleName = "t", TimeProvider = _time, Logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, State = _state,
    }, CancellationToken.None).AsTask();

    private void Append(string text) => File.AppendAllText(LogPath, text);

    private static int Matches(ProbeResult r) => (int)r.Data!["matches"];

    private const string Traceback = """
        2026-12-01 10:00:00 INFO handling /vote
        2026-12-01 10:00:01 ERROR Exception in command 'vote'
        Traceback (most recent call last):
          File "/srv/bot/bot.py", line 42, in vote
            user = users[ctx.author]
        KeyError: 'alice'
        2026-12-01 10:00:02 INFO handling /help

        """;

    [Theory]
    [InlineData("ERROR|Traceback")]          // plain words: the vectorized byte search
    [InlineData("ERROR|Trace(back)?")]       // a real regex: the chunk scanner
    public async Task ContextAfter_ShowsTheRestOfATraceback_UpToTheNextRecord(string pattern)
    {
        Append("INFO boot\n");
        var probe = RealPlugins.Create("log-regex", $"{{ path: '{LogPath}', pattern: '{pattern}', context-after: 10 }}");
        await Check(probe);
        Append(Traceback.Replace("\r\n", "\n"));
        var result = await Check(probe);
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        ((IEnumerable<string>)result.Data!["lines"]).Should().Equal(
            "2026-12-01 10:00:01 ERROR Exception in command 'vote'",
            "Traceback (most recent call last):",
            "  File \"/srv/bot/bot.py\", line 42, in vote",
            "    user = users[ctx.author]",
            "KeyError: 'alice'");
        Matches(result).Should().Be(2, "the Traceback line inside the ERROR's context still counts, and is shown once");
    }

    [Fact]
    public async Task MatchedLines_AreKeptForTheAlert_UpToTwentyLines()
    {
        Append("INFO boot\n");
        var probe = Probe();
        await Check(probe);
        Append(string.Concat(Enumerable.Range(1, 30).Select(i => $"ERROR number {i}\n")));
        var result = await Check(probe);
        Matches(result).Should().Be(30, "every match counts");
        ((IEnumerable<string>)result.Data!["lines"]).Should().HaveCount(20).And.StartWith("ERROR number 1").And.EndWith("ERROR number 20");
        Append("INFO fine\n");
        (await Check(probe)).Data!.Should().NotContainKey("lines", "each check shows its own lines");
    }

    [Fact]
    public async Task StartsAtTheEnd_AndCountsOnlyAppendedLines()
    {
        Append("INFO boot\nERROR from before Sentinel started\n");
        var probe = Probe();
        var first = await Check(probe);
        first.Status.Should().Be(ProbeStatus.Healthy);
        Matches(first).Should().Be(0);

        Append("INFO fine\nERROR database is locked\nINFO fine\n");
        var second = await Check(probe);

        second.Status.Should().Be(ProbeStatus.Unhealthy);
        Matches(second).Should().Be(1);
        second.Data!["last-match"].Should().Be("ERROR database is locked");
        ((ByteSize)second.Data["bytes-scanned"]).Bytes.Should().Be(45);
        Matches(await Check(probe)).Should().Be(0, "nothing new was appended");
    }

    [Fact]
    public async Task FromStart_ReadsExistingContent_AndIgnorePatternsNeverCount()
    {
        Append("ERROR one\nERROR expected: retrying\nTraceback (most recent call last):\n");
        var result = await Check(Probe(", from-start: true, ignore: ['retrying']"));
        Matches(result).Should().Be(2);
        result.Data!["last-match"].Should().Be("Traceback (most recent call last):");
    }

    [Fact]
    public async Task RealRegexes_AndIgnoreCase_AreJudgedPerLine()
    {
        Append("x\n");
        var anchored = RealPlugins.Create("log-regex", $"{{ path: '{LogPath}', pattern: '^HTTP 5\\d\\d$' }}");
        var caseless = RealPlugins.Create("log-regex", $"{{ path: '{LogPath}', pattern: error, ignore-case: true }}");
        await Check(anchored);
        await Check(caseless);
        Append("HTTP 503\nHTTP 404\nsaw HTTP 500 upstream\nHTTP 500\r\nan Error here\n");

        var anchoredResult = await Check(anchored);
        Matches(anchoredResult).Should().Be(2, "only whole lines that are exactly 'HTTP 5xx' (a trailing \\r dropped)");
        anchoredResult.Data!["last-match"].Should().Be("HTTP 500");
        var caselessResult = await Check(caseless);
        Matches(caselessResult).Should().Be(1);
        caselessResult.Data!["last-match"].Should().Be("an Error here");
    }

    [Fact]
    public async Task APartialLine_WaitsForItsNewline_AndAMultiByteCharacterIsNeverSplit()
    {
        var probe = Probe();
        Append("start\n");
        await Check(probe);
        var line = Encoding.UTF8.GetBytes("ERROR café ☕ broken\n");
        var cut = Array.IndexOf(line, (byte)0xC3) + 1;   // in the middle of 'é'
        await using (var f = new FileStream(LogPath, FileMode.Append)) f.Write(line, 0, cut);
        Matches(await Check(probe)).Should().Be(0, "the line is not complete yet");
        await using (var f = new FileStream(LogPath, FileMode.Append)) f.Write(line, cut, line.Length - cut);

        var result = await Check(probe);
        Matches(result).Should().Be(1);
        result.Data!["last-match"].Should().Be("ERROR café ☕ broken");
    }

    [Fact]
    public async Task CopyTruncateRotation_IsFollowed()
    {
        Append(new string('x', 5000) + "\n");
        var probe = Probe();
        await Check(probe);
        File.Copy(LogPath, LogPath + ".1");
        using (var f = new FileStream(LogPath, FileMode.Open, FileAccess.Write)) f.SetLength(0);
        Append("ERROR after truncation\n");

        var result = await Check(probe);
        Matches(result).Should().Be(1);
        result.Data!["last-match"].Should().Be("ERROR after truncation");
    }

    [Fact]
    public async Task RenameAndCreateRotation_ReadsTheOldFileToItsEnd_ThenTheNewOne()
    {
        Append("INFO start\n");
        var probe = Probe();
        await Check(probe);
        Append("ERROR written just before rotation\n");
        File.Move(LogPath, LogPath + ".1");
        File.WriteAllText(LogPath, "ERROR first line of the new file\n");

        var result = await Check(probe);
        Matches(result).Should().Be(2);
        result.Data!["last-match"].Should().Be("ERROR first line of the new file");
        Append("ERROR again\n");
        Matches(await Check(probe)).Should().Be(1);
    }

    [Fact]
    public async Task ARestart_NeitherRescansNorMissesLines()
    {
        Append("ERROR old\n");
        var before = Probe();
        await Check(before);
        Append("ERROR seen before the restart\n");
        Matches(await Check(before)).Should().Be(1);
        ((IDisposable)before).Dispose();

        Append("ERROR written while Sentinel was down\n");
        var after = Probe();   // a new instance, as after a restart; the engine hands it the same durable state
        var result = await Check(after);

        Matches(result).Should().Be(1);
        result.Data!["last-match"].Should().Be("ERROR written while Sentinel was down");
    }

    [Theory]
    [InlineData("rename")]             // logrotate's default: renamed away, a new file created
    [InlineData("copytruncate")]       // copied away, emptied, and a little written since
    [InlineData("copytruncate-grown")] // copied away, emptied, and more written since than was read before
    public async Task ARotationWhileSentinelIsStopped_LosesNoLineWrittenToTheOldFile(string mode)
    {
        Append(string.Concat(Enumerable.Repeat("INFO boot\n", 20)));
        var before = Probe();
        await Check(before);
        ((IDisposable)before).Dispose();

        Append("ERROR written after the stop, before the rotation\n");
        var rotated = LogPath + ".1";
        if (mode == "rename") File.Move(LogPath, rotated);
        else
        {
            File.Copy(LogPath, rotated);
            using var f = new FileStream(LogPath, FileMode.Open, FileAccess.Write);
            f.SetLength(0);
        }
        Append(mode == "copytruncate-grown" ? string.Concat(Enumerable.Repeat("INFO a longer new file\n", 40)) + "ERROR in the new file\n" : "ERROR in the new file\n");

        var after = Probe();
        var result = await Check(after);
        ((IEnumerable<string>)result.Data!["lines"]).Should().Equal("ERROR written after the stop, before the rotation", "ERROR in the new file");
        Append("INFO quiet\n");
        Matches(await Check(after)).Should().Be(0, "nothing is read twice");
    }

    [Fact]
    public async Task AFileReplacedWhileStopped_WithNoRotatedCopy_IsReadFromItsStart()
    {
        Append(string.Concat(Enumerable.Repeat("INFO boot\n", 20)));
        var before = Probe();
        await Check(before);
        ((IDisposable)before).Dispose();
        File.Delete(LogPath);
        Append("ERROR in the replacement\n");
        Matches(await Check(Probe())).Should().Be(1);
    }

    [Fact]
    public async Task ALineWrittenBetweenTheRulesCreationAndItsFirstCheck_IsRead_AndOldLinesAreNot()
    {
        Append("ERROR from last week\n");
        var probe = Probe();   // the rule is created (Sentinel starts); its first check may be up to a period later
        Append("Traceback written before the first check\n");
        var first = await Check(probe);
        Matches(first).Should().Be(1);
        first.Data!["last-match"].Should().Be("Traceback written before the first check");
    }

    [Fact]
    public async Task AFileThatAppearsInTheGlobLater_IsReadFromItsStart()
    {
        Append("INFO boot\n");
        var probe = RealPlugins.Create("log-regex", $"{{ path: '{Path.Combine(_dir, "*.log")}', pattern: 'ERROR' }}");
        await Check(probe);
        File.WriteAllText(Path.Combine(_dir, "worker-2.log"), "ERROR in the first line of a new file\n");
        Matches(await Check(probe)).Should().Be(1);
    }

    [Fact]
    public async Task MinMatchesWithinAWindow()
    {
        var probe = Probe(", min-matches: 3, window: 5m");
        Append("x\n");
        await Check(probe);
        for (var i = 0; i < 2; i++)
        {
            Append("ERROR flaky\n");
            _time.Advance(TimeSpan.FromMinutes(1));
            (await Check(probe)).Status.Should().Be(ProbeStatus.Healthy);
        }
        Append("ERROR flaky\n");
        var third = await Check(probe);
        third.Status.Should().Be(ProbeStatus.Unhealthy);
        third.Description.Should().StartWith("3 line(s) matching 'ERROR|Traceback' in the last 5m");

        _time.Advance(TimeSpan.FromMinutes(6));
        var later = await Check(probe);
        later.Status.Should().Be(ProbeStatus.Healthy);
        Matches(later).Should().Be(0);
    }

    [Fact]
    public async Task BinaryGarbageWithoutNewlines_IsReadInPieces_NeverHangs()
    {
        var probe = Probe(", max-line: 4KiB");
        Append("start\n");
        await Check(probe);
        var garbage = new byte[300_000];
        new Random(42).NextBytes(garbage);
        for (var i = 0; i < garbage.Length; i++) if (garbage[i] == (byte)'\n') garbage[i] = 0;
        await using (var f = new FileStream(LogPath, FileMode.Append)) f.Write(garbage);

        var result = await Check(probe).WaitAsync(TimeSpan.FromSeconds(10));
        ((ByteSize)result.Data!["bytes-scanned"]).Bytes.Should().Be(300_000);
    }

    [Fact]
    public async Task AHugeSparseLog_StartsAtItsEnd_Instantly()
    {
        await using (var f = new FileStream(LogPath, FileMode.Create)) f.SetLength(10L * 1024 * 1024 * 1024);   // 10 GB, sparse
        var probe = Probe();
        var result = await Check(probe).WaitAsync(TimeSpan.FromSeconds(5));
        ((ByteSize)result.Data!["bytes-scanned"]).Bytes.Should().Be(0);
        Append("ERROR at the end of a huge file\n");
        Matches(await Check(probe)).Should().Be(1);
    }

    [Fact]
    public async Task GlobPath_WatchesEveryMatchingFile()
    {
        File.WriteAllText(Path.Combine(_dir, "a.log"), "");
        File.WriteAllText(Path.Combine(_dir, "b.log"), "");
        var probe = RealPlugins.Create("log-regex", $"{{ path: '{Path.Combine(_dir, "*.log")}', pattern: ERROR }}");
        await Check(probe);
        File.AppendAllText(Path.Combine(_dir, "a.log"), "ERROR a\n");
        File.AppendAllText(Path.Combine(_dir, "b.log"), "ERROR b\n");
        var result = await Check(probe);
        Matches(result).Should().Be(2);
        result.Data!["files"].Should().Be(2);
    }

    [Fact]
    public async Task MissingFile_IsAClearResult()
    {
        var result = await Check(Probe());
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Be($"missing: no file matches {LogPath}");
    }

    [Theory]
    [InlineData("{ path: /x.log }", "missing required key 'pattern'")]
    [InlineData("{ path: /x.log, pattern: '([' }", "is not a valid regular expression")]
    [InlineData("{ path: /x.log, pattern: a, window: 0s }", "window must be longer than 0s")]
    public void InvalidOptions_AreExplained(string with, string message)
        => RealPlugins.Bind("log-regex", with).Errors.Should().ContainSingle().Which.Message.Should().Contain(message);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
