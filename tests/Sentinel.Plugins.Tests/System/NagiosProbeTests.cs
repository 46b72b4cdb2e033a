using System.Net;
using System.Net.Sockets;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.System;

/// <summary>The nagios probe with Debian's monitoring-plugins (installed by .ci/run) and small scripts.</summary>
public sealed class NagiosProbeTests
{
    private const string Plugins = "/usr/lib/nagios/plugins";

    private static Task<ProbeResult> Run(string command, CancellationToken ct = default) => RealPlugins.Create("nagios", $"{{ command: {command} }}").CheckAsync(ct);

    private static string Sh(string script) => $"[/bin/sh, -c, '{script.Replace("'", "''")}']";

    [Theory]
    [InlineData(0, ProbeStatus.Healthy, "OK: fine")]
    [InlineData(1, ProbeStatus.Degraded, "WARNING: slow")]
    [InlineData(2, ProbeStatus.Unhealthy, "CRITICAL: down")]
    [InlineData(3, ProbeStatus.Unhealthy, "unknown (exit 3): UNKNOWN: confused")]
    public async Task CheckDummy_ExitCodesMapToStatuses(int code, ProbeStatus status, string description)
    {
        var text = description.Split(": ", 2)[^1];
        var result = await Run($"[{Plugins}/check_dummy, '{code}', '{text}']");
        result.Status.Should().Be(status);
        result.Description.Should().EndWith(text);
        result.Data!["exit-code"].Should().Be(code);
    }

    [Fact]
    public async Task CheckTcp_AgainstAListenerTheTestOpens_ParsesItsPerfdata()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var accept = listener.AcceptTcpClientAsync();
        var result = await Run($"[{Plugins}/check_tcp, -H, 127.0.0.1, -p, '{port}']");
        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Description.Should().StartWith("TCP OK");
        result.Data!["time"].Should().BeOfType<TimeSpan>().Which.Should().BeLessThan(TimeSpan.FromSeconds(5));
        (await accept).Dispose();

        listener.Stop();
        var closed = await Run($"[{Plugins}/check_tcp, -H, 127.0.0.1, -p, '{port}']");
        closed.Status.Should().Be(ProbeStatus.Unhealthy);
    }

    [Fact]
    public async Task CheckDisk_PerfdataBecomesSizesWithThresholds()
    {
        var result = await Run($"[{Plugins}/check_disk, -w, '1%', -c, '0%', -p, /tmp]");
        result.Status.Should().NotBe(ProbeStatus.Unhealthy, result.Description);
        var size = result.Data!.Where(kv => kv.Value is ByteSize).Should().NotBeEmpty().And.Subject.First();
        result.Data.Should().ContainKey(size.Key + ".max");
    }

    [Fact]
    public async Task Perfdata_QuotedLabels_Units_LongOutput_AndMalformedItemsAreReportedNotFatal()
    {
        var result = await Run(Sh("printf \"OK - all good | load1=0.5;4;8;0 'disk used'=2GB;;;0;10GB\\nsecond line of long text\\nthird | time=250ms count=12c ratio=45.5%% bad=abc broken\\nrss=10MB\\n\""));
        result.Status.Should().Be(ProbeStatus.Healthy);
        result.Description.Should().Be("OK - all good");
        result.Data!["load1"].Should().Be(0.5);
        result.Data["load1.warn"].Should().Be(4.0);
        result.Data["load1.crit"].Should().Be(8.0);
        result.Data["disk used"].Should().Be(new ByteSize(2L * 1024 * 1024 * 1024));
        result.Data["disk used.min"].Should().Be(0.0);
        result.Data["disk used.max"].Should().Be(new ByteSize(10L * 1024 * 1024 * 1024), "a threshold with a unit is typed like a value");
        result.Data["time"].Should().Be(TimeSpan.FromMilliseconds(250));
        result.Data["count"].Should().Be(12.0);
        result.Data["ratio"].Should().Be(45.5);
        result.Data["rss"].Should().Be(new ByteSize(10L * 1024 * 1024));
        result.Data["perfdata-errors"].Should().Be("'bad=abc': the value is not a number with a unit; 'broken' is not label=value");
    }

    [Fact]
    public async Task NoOutput_Megabytes_MissingProgram_AndAHang()
    {
        (await Run(Sh("exit 2"))).Description.Should().Be("(no output)");
        var big = await Run(Sh("echo OK big; head -c 5000000 /dev/zero | tr \"\\\\0\" x"));
        big.Status.Should().Be(ProbeStatus.Healthy);
        big.Data!["output-truncated"].Should().Be(true);
        (await Run("[/nonexistent/check_thing]")).Description.Should().Be("unknown: '/nonexistent/check_thing' could not be started: no such program (give a full path, or check PATH)");

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var started = global::System.Diagnostics.Stopwatch.StartNew();
        var hang = async () => await Run(Sh("sleep 30"), cts.Token);
        await hang.Should().ThrowAsync<OperationCanceledException>();
        started.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5), "the engine's timeout kills the check");
    }
}
