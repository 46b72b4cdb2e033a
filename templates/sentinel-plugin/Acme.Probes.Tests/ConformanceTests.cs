using Sentinel.Plugins.Testing;
using Xunit;

namespace Acme.Probes.Tests;

/// <summary>Sentinel's conformance kit: what every first-party plugin passes, run against this one.</summary>
public sealed class ConformanceTests
{
    [Fact]
    public void ThePlugin_KeepsTheContract() => PluginConformance.AssertContract(new Plugin());

    [Fact]
    public async Task AFailingTarget_IsReported_NotThrown()
        => await PluginConformance.AssertReportsFailureAsync(new FileAgeProbe(new FileAgeProbeOptions { Path = "/nonexistent/acme-probes-test" }));

    [Fact]
    public async Task Cancellation_IsHonoured_OnATargetThatNeverAnswers()
    {
        // Point the probe at something that hangs (a FIFO nobody writes; HangingTargets.Url / Port for network
        // probes): a target that fails at once would let a probe that ignores its token pass.
        using var targets = new HangingTargets();
        await PluginConformance.AssertHonoursCancellationAsync(new FileAgeProbe(new FileAgeProbeOptions { Path = targets.Fifo }));
    }

    [Fact]
    public void OptionsWithoutAPath_AreRejected()
        => Assert.Contains(PluginConformance.Validate(new FileAgeProbeOptions()), e => e.Contains("Path"));
}
