using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.System;

/// <summary>The `process` probe against real processes started by the tests.</summary>
public sealed class ProcessProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sentinel-process", Guid.NewGuid().ToString("N")[..10])).FullName;

    private string Pidfile(int pid, DateTime? writtenUtc = null)
    {
        var path = Path.Combine(_dir, $"{Guid.NewGuid():N}.pid");
        File.WriteAllText(path, pid + "\n");
        if (writtenUtc is { } t) File.SetLastWriteTimeUtc(path, t);
        return path;
    }

    private static Task<ProbeResult> Check(string with) => RealPlugins.Create("process", with).CheckAsync();

    [Fact]
    public async Task Pidfile_OfARunningProcess_IsHealthy_AndMeasuresIt()
    {
        using var child = ChildProcess.Sleeper(out _);
        var result = await Check($"{{ pidfile: '{Pidfile(child.Pid)}' }}");

        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Data!["pid"].Should().Be(child.Pid);
        result.Data["count"].Should().Be(1);
        ((ByteSize)result.Data["rss"]).Bytes.Should().BeGreaterThan(0);
        ((int)result.Data["threads"]).Should().BeGreaterThanOrEqualTo(1);
        ((TimeSpan)result.Data["uptime"]).Should().BeLessThan(TimeSpan.FromMinutes(1));
        result.Description.Should().StartWith($"pid {child.Pid} up ");
    }

    [Fact]
    public async Task Pidfile_OfAnExitedProcess_IsDown()
    {
        var child = ChildProcess.Start("true");
        var pid = child.Pid;
        child.Process.WaitForExit();
        child.Dispose();
        var result = await Check($"{{ pidfile: '{Pidfile(pid)}' }}");

        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("not running");
        result.Data!["count"].Should().Be(0);
    }

    [Fact]
    public async Task AZombie_IsNotAlive()
    {
        // The parent forks a child that exits at once and is never reaped: a real zombie.
        using var parent = ChildProcess.Start("/usr/bin/python3", "-c",
            "import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(600)");
        var zombie = int.Parse(await parent.ReadLineAsync());
        await Eventually.Until(() => File.ReadAllText($"/proc/{zombie}/stat").Contains(") Z "));

        var result = await Check($"{{ pidfile: '{Pidfile(zombie)}' }}");

        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().StartWith($"pid {zombie} from ").And.EndWith("is a zombie: it exited and its parent has not reaped it");
    }

    [Fact]
    public async Task Pidfile_WhosePidNowBelongsToAnotherProgram_IsDown()
    {
        using var other = ChildProcess.Sleeper(out _);
        var result = await Check($"{{ pidfile: '{Pidfile(other.Pid)}', match: 'python.*bot\\.py' }}");

        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("now belongs to another program").And.Contain("sleep");
    }

    [Fact]
    public async Task Pidfile_OlderThanTheProcessWithItsPid_MeansThePidWasReused()
    {
        using var newcomer = ChildProcess.Sleeper(out _);
        var stale = Pidfile(newcomer.Pid, DateTime.UtcNow.AddHours(-1));
        var result = await Check($"{{ pidfile: '{stale}' }}");

        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("after the pidfile was written").And.Contain("reused");
    }

    [Fact]
    public async Task Match_CountsInstances_AgainstMinAndMax()
    {
        var tag = Random.Shared.Next(100_000, 999_999);
        using var a = ChildProcess.Start("sleep", $"601.{tag}");
        using var b = ChildProcess.Start("sleep", $"602.{tag}");
        var match = $"sleep 60[12]\\.{tag}";

        var exactlyOne = await Check($"{{ match: '{match}', max: 1 }}");
        exactlyOne.Status.Should().Be(ProbeStatus.Unhealthy);
        exactlyOne.Description.Should().StartWith($"2 processes match match '{match}', at most 1 expected");

        var two = await Check($"{{ match: '{match}', min: 2, max: 2 }}");
        two.Status.Should().Be(ProbeStatus.Healthy, two.Description);
        ((List<object>)two.Data!["pids"]).Should().BeEquivalentTo(new object[] { a.Pid, b.Pid });

        var none = await Check($"{{ match: 'sleep 603\\.{tag}' }}");
        none.Status.Should().Be(ProbeStatus.Unhealthy);
        none.Description.Should().Be($"no process matches match 'sleep 603\\.{tag}'");
    }

    [Fact]
    public async Task Name_MatchesTheProcessName()
    {
        var name = "snt" + Guid.NewGuid().ToString("N")[..8];
        var link = Path.Combine(_dir, name);
        File.CreateSymbolicLink(link, "/bin/sleep");
        using var child = ChildProcess.Start(link, "600");
        await Eventually.Until(() => File.ReadAllText($"/proc/{child.Pid}/comm").Trim() == name);

        var result = await Check($"{{ name: {name} }}");
        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Data!["pid"].Should().Be(child.Pid);
    }

    [Fact]
    public async Task Cpu_IsMeasuredBetweenChecks()
    {
        using var busy = ChildProcess.Start("/usr/bin/python3", "-c", "while True: pass");
        var probe = RealPlugins.Create("process", $"{{ pidfile: '{Pidfile(busy.Pid)}' }}");
        var (ticks0, wall0) = (CpuTicks(busy.Pid), global::System.Diagnostics.Stopwatch.GetTimestamp());
        await probe.CheckAsync();
        // The busy loop must use some CPU between the two readings: awaited, however busy the machine is.
        await Eventually.Until(() => CpuTicks(busy.Pid) - ticks0 >= 40);
        var second = await probe.CheckAsync();
        var (ticks1, wall1) = (CpuTicks(busy.Pid), global::System.Diagnostics.Stopwatch.GetTimestamp());
        // What the kernel says the process used over (about) the same interval; the machine may be busy with other tests.
        var truth = (ticks1 - ticks0) / 100.0 / global::System.Diagnostics.Stopwatch.GetElapsedTime(wall0, wall1).TotalSeconds * 100;
        truth.Should().BeGreaterThan(5, "the busy loop ran");
        ((double)second.Data!["cpu"]).Should().BeApproximately(truth, 20);
    }

    private static long CpuTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(f[11]) + long.Parse(f[12]);
    }

    [Theory]
    [InlineData("garbage", "does not hold a PID (it holds 'not a pid')")]
    [InlineData("missing", "does not exist")]
    [InlineData("directory", "cannot be read")]
    public async Task BadPidfiles_GiveAClearResult(string kind, string expected)
    {
        var path = Path.Combine(_dir, "bad.pid");
        switch (kind)
        {
            case "garbage": File.WriteAllText(path, "not a pid"); break;
            case "directory": Directory.CreateDirectory(path); break;
        }
        var result = await Check($"{{ pidfile: '{path}' }}");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain(expected);
    }

    [Theory]
    [InlineData("{ }", "say which process: set pidfile, match or name")]
    [InlineData("{ pidfile: /a, name: b }", "set pidfile or name, not both")]
    [InlineData("{ match: '([' }", "match is not a valid regular expression")]
    [InlineData("{ name: a, min: 3, max: 2 }", "max (2) is smaller than min (3)")]
    public void InvalidOptions_AreExplained(string with, string message)
    {
        var (_, errors) = RealPlugins.Bind("process", with);
        errors.Should().ContainSingle().Which.Message.Should().Contain(message);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
