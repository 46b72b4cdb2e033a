using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.System;

/// <summary>The `memory` probe against this machine's memory and a real process that allocates on command.</summary>
public sealed class MemoryProbeTests
{
    private const string Allocator = """
        import sys
        held = []
        print("ready", flush=True)
        for line in sys.stdin:
            held.append(bytearray(b"\x01") * (int(line) * 1024 * 1024))   # written, so resident
            print("ok", flush=True)
        """;

    private static ByteSize Size(ProbeResult r, string key) => (ByteSize)r.Data![key];

    [Fact]
    public async Task SystemOnly_ReportsAvailableMemoryAndSwap()
    {
        var result = await RealPlugins.Create("memory", "{ }").CheckAsync();

        result.Status.Should().Be(ProbeStatus.Healthy);
        Size(result, "available").Bytes.Should().BeGreaterThan(0).And.BeLessThanOrEqualTo(Size(result, "total").Bytes);
        ((double)result.Data!["available-percent"]).Should().BeInRange(0.1, 100);
        Size(result, "swap-used").Bytes.Should().BeGreaterThanOrEqualTo(0);
        result.Data.Should().NotContainKey("rss");
    }

    [Fact]
    public async Task ProcessRss_AndItsGrowthPerHour_CatchALeakBeforeTheLimit()
    {
        using var child = ChildProcess.Start("/usr/bin/python3", "-c", Allocator);
        child.Process.StandardInput.AutoFlush = true;
        (await child.ReadLineAsync()).Should().Be("ready");
        var pidProbe = RealPlugins.Create("memory", $"{{ pidfile: '{WritePidfile(child.Pid)}', trend-window: 1h }}");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);

        var before = await pidProbe.CheckAsync(time: time);
        before.Data.Should().NotContainKey("rss-growth", "one sample is no trend");
        await Allocate(child, 60);
        time.Advance(TimeSpan.FromMinutes(10));
        var after = await pidProbe.CheckAsync(time: time);

        after.Status.Should().Be(ProbeStatus.Healthy, after.Description);
        (Size(after, "rss").Bytes - Size(before, "rss").Bytes).Should().BeGreaterThan(55L * 1024 * 1024);
        var growth = Size(after, "rss-growth").Bytes;
        growth.Should().BeInRange(300L * 1024 * 1024, 420L * 1024 * 1024, "60 MiB in 10 minutes is 360 MiB an hour");
        Condition.Parse("rss-growth < 50MB").Evaluate(after.Data).Passed.Should().BeFalse();
        Condition.Parse("rss < 4GB").Evaluate(after.Data).Passed.Should().BeTrue();
        ((double)after.Data!["rss-percent"]).Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task OldSamples_LeaveTheTrendWindow()
    {
        using var child = ChildProcess.Start("/usr/bin/python3", "-c", Allocator);
        child.Process.StandardInput.AutoFlush = true;
        await child.ReadLineAsync();
        var probe = RealPlugins.Create("memory", $"{{ pidfile: '{WritePidfile(child.Pid)}', trend-window: 30m }}");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);

        await probe.CheckAsync(time: time);
        await Allocate(child, 40);
        time.Advance(TimeSpan.FromMinutes(10));
        (await probe.CheckAsync(time: time)).Data!.Should().ContainKey("rss-growth");
        for (var i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromMinutes(15));
            await probe.CheckAsync(time: time);
        }
        var steady = await probe.CheckAsync(time: time);
        Math.Abs(Size(steady, "rss-growth").Bytes).Should().BeLessThan(5L * 1024 * 1024, "the growth an hour ago is outside the 30m window");
    }

    [Fact]
    public async Task MissingProcess_IsUnhealthy_AndStillReportsSystemMemory()
    {
        var result = await RealPlugins.Create("memory", $"{{ match: 'no-such-program-{Guid.NewGuid():N}' }}").CheckAsync();
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().StartWith("no process matches match 'no-such-program-");
        result.Data.Should().ContainKey("available");
    }

    [Theory]
    [InlineData("{ trend-window: 1s }", "trend-window must be at least 10s")]
    [InlineData("{ pidfile: /a, name: b }", "set pidfile or name, not both")]
    public void InvalidOptions_AreExplained(string with, string message)
        => RealPlugins.Bind("memory", with).Errors.Should().ContainSingle().Which.Message.Should().Contain(message);

    private static async Task Allocate(ChildProcess child, int megabytes)
    {
        await child.Process.StandardInput.WriteLineAsync(megabytes.ToString());
        (await child.ReadLineAsync()).Should().Be("ok");
    }

    private static string WritePidfile(int pid)
    {
        var path = Path.Combine(Path.GetTempPath(), $"sentinel-mem-{Guid.NewGuid():N}.pid");
        File.WriteAllText(path, pid.ToString());
        return path;
    }
}
