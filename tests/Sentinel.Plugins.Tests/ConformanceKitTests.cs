using System.Net.Sockets;
using Sentinel.Abstractions;
using Sentinel.Plugins.Testing;

namespace Sentinel.Plugins.Tests;

/// <summary>The conformance kit itself: it must fail a probe that ignores cancellation, not only pass good ones.</summary>
public sealed class ConformanceKitTests : IDisposable
{
    private readonly HangingTargets _targets = new();

    [Fact]
    public async Task AProbeThatIgnoresItsToken_WhileWaitingOnASilentListener_FailsTheKit()
    {
        var probe = new IgnoresTokenProbe(_targets.Port);
        var check = () => PluginConformance.AssertHonoursCancellationAsync(probe, engaged: () => _targets.Connections > 0);
        (await check.Should().ThrowAsync<ConformanceException>())
            .Which.Violations.Should().ContainSingle().Which.Should().Contain("did not return within 1s", "it ignores even a token cancelled before it starts");
    }

    [Fact]
    public async Task AProbeThatChecksItsTokenFirst_ButIgnoresItWhileWaiting_FailsTheKit()
    {
        var probe = new IgnoresTokenProbe(_targets.Port) { CheckFirst = true };
        var check = () => PluginConformance.AssertHonoursCancellationAsync(probe, engaged: () => _targets.Connections > 0);
        (await check.Should().ThrowAsync<ConformanceException>())
            .Which.Violations.Should().ContainSingle().Which.Should().StartWith("the probe ignored cancellation while it waited on its target");
    }

    // Contract 0.2: a result nobody set is unhealthy, and the kit says what happened.
    [Fact]
    public async Task AProbeThatReturnsAResultItNeverSet_FailsTheKitsSuccessCheck_AndAHealthyOnePasses()
    {
        var check = () => PluginConformance.AssertReportsSuccessAsync(new ForgetfulProbe());
        (await check.Should().ThrowAsync<ConformanceException>()).Which.Violations.Should().ContainSingle()
            .Which.Should().Contain("a result whose status was never set (default is Unhealthy since contract 0.2)");
        default(ProbeResult).Status.Should().Be(ProbeStatus.Unhealthy);
        (await PluginConformance.AssertReportsSuccessAsync(new ForgetfulProbe { Sets = true })).Status.Should().Be(ProbeStatus.Healthy);
    }

    private sealed class ForgetfulProbe : IProbe
    {
        public bool Sets { get; init; }

        public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
            => ValueTask.FromResult(Sets ? ProbeResult.Healthy("answered") : default);
    }

    [Fact]
    public async Task AProbeThatReadsAFifoWithoutLooking_FailsTheKit()
    {
        var check = () => PluginConformance.AssertHonoursCancellationAsync(new ReadsBlindlyProbe(_targets.Fifo));
        await check.Should().ThrowAsync<ConformanceException>();
        // Disposing the targets releases the thread still blocked in open() (see Dispose).
    }

    [Fact]
    public async Task AProbeThatPassesItsToken_PassesTheKit_AndWasCancelledWhileWaiting()
    {
        var check = await PluginConformance.AssertHonoursCancellationAsync(new HonoursTokenProbe(_targets.Port), engaged: () => _targets.Connections > 0);
        check.Waited.Should().BeTrue();
        check.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task ATargetThatFailsAtOnce_IsSeenAsNothingToCancel()
    {
        // The old loophole: against a closed port even a probe that ignores its token returns at once. The kit says so.
        var check = await PluginConformance.AssertHonoursCancellationAsync(new IgnoresTokenProbe(1));
        check.Waited.Should().BeFalse();
    }

    public void Dispose() => _targets.Dispose();

    private sealed class IgnoresTokenProbe(int port) : IProbe
    {
        public bool CheckFirst { get; init; }

        public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        {
            if (CheckFirst) cancellationToken.ThrowIfCancellationRequested();
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync("127.0.0.1", port, CancellationToken.None);
                var buffer = new byte[1];
                var read = await client.GetStream().ReadAsync(buffer, CancellationToken.None);
                return ProbeResult.Healthy($"read {read}");
            }
            catch (SocketException e) { return ProbeResult.Unhealthy(e.Message); }
            catch (IOException e) { return ProbeResult.Unhealthy(e.Message); }
        }
    }

    private sealed class HonoursTokenProbe(int port) : IProbe
    {
        public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            var read = await client.GetStream().ReadAsync(new byte[1], cancellationToken);
            return ProbeResult.Healthy($"read {read}");
        }
    }

    private sealed class ReadsBlindlyProbe(string path) : IProbe
    {
        public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
            => ValueTask.FromResult(ProbeResult.Healthy(File.ReadAllText(path)));
    }
}
