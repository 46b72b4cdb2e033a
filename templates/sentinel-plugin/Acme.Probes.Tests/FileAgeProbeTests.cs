using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Xunit;

namespace Acme.Probes.Tests;

public sealed class FileAgeProbeTests : IDisposable
{
    private readonly string _file = Path.GetTempFileName();

    private static ProbeContext Context(TimeProvider time) => new()
    {
        RuleName = "test", TimeProvider = time, Logger = NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task AFreshFile_IsHealthy_AnOldOne_IsNot()
    {
        var time = new FakeTimeProvider(File.GetLastWriteTimeUtc(_file));
        var probe = new FileAgeProbe(new FileAgeProbeOptions { Path = _file, MaxAge = TimeSpan.FromMinutes(5) });
        Assert.Equal(ProbeStatus.Healthy, (await probe.CheckAsync(Context(time), default)).Status);
        time.Advance(TimeSpan.FromMinutes(6));
        var old = await probe.CheckAsync(Context(time), default);
        Assert.Equal(ProbeStatus.Unhealthy, old.Status);
        Assert.Equal("not written for 6 min", old.Description);
    }

    [Fact]
    public async Task AMissingFile_IsReported_NotThrown()
    {
        var probe = new FileAgeProbe(new FileAgeProbeOptions { Path = _file + ".missing" });
        var result = await probe.CheckAsync(Context(TimeProvider.System), default);
        Assert.Equal(ProbeStatus.Unhealthy, result.Status);
        Assert.EndsWith("does not exist", result.Description);
    }

    public void Dispose() => File.Delete(_file);
}
