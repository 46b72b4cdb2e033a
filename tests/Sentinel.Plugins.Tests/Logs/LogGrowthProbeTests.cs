using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Logs;

/// <summary>The `log-growth` probe on real files, appended to and rotated both ways; time from a FakeTimeProvider.</summary>
public sealed class LogGrowthProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sentinel-growth", Guid.NewGuid().ToString("N")[..10])).FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private string LogPath => Path.Combine(_dir, "bot.log");

    private IProbe Probe(string maxSilence = "5m") => RealPlugins.Create("log-growth", $"{{ path: '{LogPath}', max-silence: {maxSilence} }}");

    private void Append(string text) => File.AppendAllText(LogPath, text);

    private async Task<ProbeResult> After(IProbe probe, TimeSpan wait)
    {
        _time.Advance(wait);
        return await probe.CheckAsync(time: _time);
    }

    [Fact]
    public async Task GrowingLog_IsHealthy_AndReportsGrowth()
    {
        Append("start\n");
        var probe = Probe();
        (await probe.CheckAsync(time: _time)).Status.Should().Be(ProbeStatus.Healthy);
        Append("0123456789\n");

        var result = await After(probe, TimeSpan.FromMinutes(1));

        result.Status.Should().Be(ProbeStatus.Healthy);
        ((ByteSize)result.Data!["grown"]).Bytes.Should().Be(11);
        ((ByteSize)result.Data["size"]).Bytes.Should().Be(17);
        result.Data["silence"].Should().Be(TimeSpan.Zero);
    }

    [Fact]
    public async Task LogThatStopsGrowing_FailsAfterMaxSilence()
    {
        Append("line\n");
        var probe = Probe("5m");
        await probe.CheckAsync(time: _time);

        (await After(probe, TimeSpan.FromMinutes(4))).Status.Should().Be(ProbeStatus.Healthy);
        var silent = await After(probe, TimeSpan.FromMinutes(2));

        silent.Status.Should().Be(ProbeStatus.Unhealthy);
        silent.Description.Should().Be("bot.log has not grown for 6m0s (max-silence 5m0s): is the service hung?");
        silent.Data!["silence"].Should().Be(TimeSpan.FromMinutes(6));
        Append("alive again\n");
        (await After(probe, TimeSpan.FromSeconds(10))).Status.Should().Be(ProbeStatus.Healthy);
    }

    [Fact]
    public async Task AFileQuietSinceLongBeforeTheFirstCheck_IsSilentAtOnce()
    {
        Append("old\n");
        File.SetLastWriteTimeUtc(LogPath, _time.GetUtcNow().UtcDateTime.AddHours(-2));
        var result = await Probe("30m").CheckAsync(time: _time);
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        ((TimeSpan)result.Data!["silence"]).Should().BeCloseTo(TimeSpan.FromHours(2), TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task CopyTruncateRotation_CountsWhenTheFileGrowsAgain()
    {
        Append(new string('x', 10_000));
        var probe = Probe("5m");
        await probe.CheckAsync(time: _time);
        File.Copy(LogPath, LogPath + ".1");
        using (var f = new FileStream(LogPath, FileMode.Open, FileAccess.Write)) f.SetLength(0);   // copy-truncate, as logrotate does
        Append("after rotation\n");

        var result = await After(probe, TimeSpan.FromMinutes(3));

        result.Status.Should().Be(ProbeStatus.Healthy);
        ((ByteSize)result.Data!["grown"]).Bytes.Should().Be(15);
        result.Data["silence"].Should().Be(TimeSpan.Zero);
    }

    [Fact]
    public async Task RenameAndCreateRotation_CountsOnlyOnceTheNewFileGrows()
    {
        Append(new string('x', 5_000));
        var probe = Probe("5m");
        await probe.CheckAsync(time: _time);
        File.Move(LogPath, LogPath + ".1");
        File.WriteAllText(LogPath, "");                                                                  // rename-and-create, empty

        var empty = await After(probe, TimeSpan.FromMinutes(6));
        empty.Status.Should().Be(ProbeStatus.Unhealthy, "an empty new file is not activity");

        Append("first line of the new file\n");
        var grown = await After(probe, TimeSpan.FromSeconds(5));
        grown.Status.Should().Be(ProbeStatus.Healthy);
        ((ByteSize)grown.Data!["grown"]).Bytes.Should().Be(27);
    }

    [Fact]
    public async Task MissingFile_IsAClearResult()
    {
        var result = await Probe().CheckAsync(time: _time);
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Be($"missing: {LogPath} does not exist");
    }

    [Fact]
    public void Options_RequireAPath()
        => RealPlugins.Bind("log-growth", "{ max-silence: 1m }").Errors.Should().ContainSingle().Which.Message.Should().Contain("missing required key 'path'");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
