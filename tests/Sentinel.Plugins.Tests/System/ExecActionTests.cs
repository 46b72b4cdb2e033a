using Sentinel.Engine.Plugins;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.System;

public sealed class ExecActionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sentinel-exec-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ShellMetacharactersInArgv_ArePassedLiterally()
    {
        var marker = Path.Combine(_dir, "pwned");
        var arg = $"$(touch {marker}); `touch {marker}` | touch {marker} && echo *";
        var action = RealPlugins.CreateAction("exec", $"{{ command: [printf, '%s\\n', '{arg.Replace("'", "''")}'] }}");
        var (output, error) = await action.RunAsync();
        error.Should().BeNull();
        output.Should().Equal(arg);
        File.Exists(marker).Should().BeFalse("no shell ran");
    }

    [Fact]
    public async Task NonZeroExit_Fails_WithTheLastLinesOfBothStreams()
    {
        var action = RealPlugins.CreateAction("exec", """{ command: [/bin/sh, -c, "echo restarting; echo 'no such unit' >&2; exit 5"] }""");
        var (output, error) = await action.RunAsync();
        error.Should().BeOfType<InvalidOperationException>().Which.Message.Should().StartWith("'/bin/sh -c 'echo restarting;").And.Contain("exited with code 5");
        output.Should().BeEquivalentTo(["restarting", "[stderr] no such unit"]);
    }

    [Fact]
    public async Task Timeout_KillsTheCommand_AndFails()
    {
        var pidfile = Path.Combine(_dir, "pid");
        var action = RealPlugins.CreateAction("exec", $$"""{ command: "echo $$$$ > {{pidfile}}; echo waiting; exec sleep 30", shell: true, timeout: 300ms }""");
        var started = global::System.Diagnostics.Stopwatch.StartNew();
        var (output, error) = await action.RunAsync();
        error.Should().BeOfType<TimeoutException>().Which.Message.Should().Contain("did not finish within 0s: it was killed: waiting");
        started.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        var pid = int.Parse(File.ReadAllText(pidfile).Trim());
        await Eventually.Until(() => !File.Exists($"/proc/{pid}/stat") || File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "));
        output.Should().Equal("waiting");
    }

    [Fact]
    public async Task MissingProgram_FailsWithAClearMessage()
    {
        var action = RealPlugins.CreateAction("exec", "{ command: [no-such-program-xyz, --flag] }");
        var (_, error) = await action.RunAsync();
        error!.Message.Should().Be("'no-such-program-xyz --flag' could not be started: 'no-such-program-xyz' was not found (give a full path, or check PATH)");
    }

    [Fact]
    public async Task CwdEnvAndSentinelVariables_ReachTheCommand()
    {
        var action = RealPlugins.CreateAction("exec", $$"""{ command: "pwd; echo $GREETING $SENTINEL_RULE $SENTINEL_ATTEMPT", shell: true, cwd: "{{_dir}}", env: { GREETING: hello } }""");
        var (output, error) = await action.RunAsync(attempt: 3);
        error.Should().BeNull();
        output.Should().Equal(_dir, "hello test 3");
    }

    [Theory]
    [InlineData("{ command: [] }", "set command to the program and its arguments")]
    [InlineData("{ command: [a, b], shell: true }", "with shell: true, write command as one line of shell script")]
    [InlineData("{ command: [a], timeout: 0s }", "timeout must be longer than 0s")]
    [InlineData("{ command: [a], cwd: /no/such/dir }", "cwd /no/such/dir is not a directory")]
    public void BadOptions_AreConfigErrors(string with, string expected)
    {
        var (_, errors) = RealPlugins.Bind("exec", with, PluginKind.Action);
        errors.Should().ContainSingle().Which.Message.Should().Contain(expected);
    }

}
