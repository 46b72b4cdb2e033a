using Sentinel.Engine.Plugins;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.System;

public sealed class SignalActionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sentinel-signal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Pidfile(int pid)
    {
        var path = Path.Combine(_dir, "svc.pid");
        File.WriteAllText(path, pid + "\n");
        return path;
    }

    [Fact]
    public async Task Term_StopsAProcessThatHonoursIt()
    {
        using var child = ChildProcess.Start("/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(1)");
        var action = RealPlugins.CreateAction("signal", $"{{ pidfile: '{Pidfile(child.Pid)}', grace: 5s }}");
        var (output, error) = await action.RunAsync();
        error.Should().BeNull();
        child.Process.WaitForExit(5000).Should().BeTrue();
        output.Should().ContainSingle().Which.Should().StartWith($"sent TERM to pid {child.Pid}");
    }

    [Fact]
    public async Task AProcessIgnoringTerm_IsKilledAfterGrace()
    {
        using var child = ChildProcess.Start("/usr/bin/python3", "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\nwhile True: time.sleep(1)");
        child.Process.StandardOutput.ReadLine().Should().Be("ready");
        var action = RealPlugins.CreateAction("signal", $"{{ pidfile: '{Pidfile(child.Pid)}', grace: 300ms }}");
        var (output, error) = await action.RunAsync();
        error.Should().BeNull();
        child.Process.WaitForExit(5000).Should().BeTrue();
        child.Process.ExitCode.Should().Be(137, "it died of KILL");
        output.Should().HaveCount(2);
        output[0].Should().StartWith($"sent TERM to pid {child.Pid} (/usr/bin/python3 -c import signal");
        output[1].Should().Be($"pid {child.Pid} still running after 0s: sent KILL");
    }

    [Fact]
    public async Task ByMatch_SignalsEveryMatchingProcess()
    {
        var tag = "sentinel-signal-" + Guid.NewGuid().ToString("N")[..8];
        using var a = ChildProcess.Start("/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(1)", tag);
        using var b = ChildProcess.Start("/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(1)", tag);
        var action = RealPlugins.CreateAction("signal", $"{{ match: '{tag}', signal: usr1 }}");
        var (output, error) = await action.RunAsync();
        error.Should().BeNull();
        a.Process.WaitForExit(5000).Should().BeTrue();
        b.Process.WaitForExit(5000).Should().BeTrue();
        output.Should().HaveCount(2).And.OnlyContain(l => l.StartsWith("sent USR1 to pid"));
    }

    [Fact]
    public async Task NothingMatched_Fails_SoTheEventSaysSo()
    {
        var action = RealPlugins.CreateAction("signal", $"{{ match: 'no-such-process-{Guid.NewGuid():N}' }}");
        var (_, error) = await action.RunAsync();
        error!.Message.Should().StartWith("no running process matched match 'no-such-process-").And.EndWith(": nothing to stop");
    }

    [Fact]
    public void MissingSelector_IsAConfigError()
    {
        var (_, errors) = RealPlugins.Bind("signal", "{ grace: 1s }", PluginKind.Action);
        errors.Should().ContainSingle().Which.Message.Should().Contain("say which process: set pidfile, match or name");
    }
}
