using System.Diagnostics;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests;

/// <summary>
/// What every first-party probe promises, checked on each through the real loader: sealed types, stable
/// kebab-case names, options that validate with clear messages, a failing target reported (never thrown),
/// cancellation honoured while it waits on a target that never answers. A new probe adds a row to
/// <see cref="Probes"/> and to <see cref="HangingProbes"/>.
/// </summary>
public sealed partial class ConformanceTests : IClassFixture<ConformanceTests.Targets>
{
    /// <summary>One listener that never answers and one FIFO nobody writes, for every row of the class.</summary>
    public sealed class Targets : IDisposable
    {
        public Sentinel.Plugins.Testing.HangingTargets Hanging { get; } = new();

        public string Fill(string with) => with.Replace("{url}", Hanging.Url).Replace("{port}", Hanging.Port.ToString()).Replace("{fifo}", Hanging.Fifo);

        public void Dispose() => Hanging.Dispose();
    }

    private readonly Targets _targets;

    public ConformanceTests(Targets targets) => _targets = targets;

    /// <summary>Each probe type with a `with:` block whose target fails on this machine.</summary>
    public static TheoryData<string, string> Probes => new()
    {
        { "http", "{ url: 'http://127.0.0.1:1/health' }" },
        { "process", "{ pidfile: /nonexistent/sentinel-test.pid }" },
        { "memory", "{ pidfile: /nonexistent/sentinel-test.pid }" },
        { "log-growth", "{ path: /nonexistent/sentinel-test.log }" },
        { "log-regex", "{ path: /nonexistent/sentinel-test.log, pattern: ERROR }" },
        { "gateway", "{ host: 127.0.0.1, port: 1 }" },
        { "file-valid", "{ path: /nonexistent/sentinel-test.json }" },
        { "nagios", "{ command: [/bin/sh, -c, 'echo CRITICAL - down; exit 2'] }" },
        { "check-program", "{ command: [/nonexistent/check_thing] }" },
        { "disk", "{ path: /nonexistent/sentinel-test }" },
    };

    [Fact]
    public void EveryRegisteredProbe_IsCovered()
        => RealPlugins.Catalog.Names(Sentinel.Engine.Model.PluginKind.Probe).Should().BeEquivalentTo(Probes.Select(row => (string)row[0]));

    [Theory]
    [MemberData(nameof(Probes))]
    public void Types_AreSealed_AndNamedInKebabCase(string type, string _)
    {
        var reg = RealPlugins.Probe(type);
        reg.ImplementationType.IsSealed.Should().BeTrue();
        reg.OptionsType.IsSealed.Should().BeTrue();
        reg.ImplementationType.IsPublic.Should().BeFalse("implementations are internal; the options are the public surface");
        KebabName().IsMatch(type).Should().BeTrue();
        reg.Description.Should().NotBeNullOrWhiteSpace();
    }

    [Theory]
    [MemberData(nameof(Probes))]
    public void Options_RejectUnknownKeys_WithASuggestion(string type, string _)
    {
        var (_, errors) = RealPlugins.Bind(type, "{ definitely-not-an-option: 1 }");
        errors.Should().Contain(e => e.Message.Contains("unknown key 'definitely-not-an-option'"));
    }

    [Theory]
    [MemberData(nameof(Probes))]
    public async Task FailingTarget_IsReported_NotThrown(string type, string with)
    {
        // The same check plugin authors run from Sentinel.Plugins.Testing.
        var probe = RealPlugins.Create(type, with);
        await Sentinel.Plugins.Testing.PluginConformance.AssertReportsFailureAsync(probe);
        (probe as IDisposable)?.Dispose();
    }

    /// <summary>
    /// Each probe type pointed at a target that never answers: a port that accepts and stays silent, a program that
    /// sleeps, or a FIFO nobody writes (which a file probe must refuse at once rather than wait on); and whether the
    /// probe is expected to be waiting on it when cancelled.
    /// </summary>
    public static TheoryData<string, string, bool> HangingProbes => new()
    {
        { "http", "{ url: '{url}' }", true },
        { "gateway", "{ host: 127.0.0.1, port: {port}, tls: true }", true },
        { "nagios", "{ command: [sleep, '60'] }", true },
        { "check-program", "{ command: [sleep, '60'] }", true },
        { "process", "{ pidfile: '{fifo}' }", false },
        { "memory", "{ pidfile: '{fifo}' }", false },
        { "log-growth", "{ path: '{fifo}' }", false },
        { "log-regex", "{ path: '{fifo}', pattern: ERROR }", false },
        { "file-valid", "{ path: '{fifo}' }", false },
        { "disk", "{ path: '{fifo}' }", false },
    };

    [Fact]
    public void EveryRegisteredProbe_HasAHangingTarget()
        => RealPlugins.Catalog.Names(Sentinel.Engine.Model.PluginKind.Probe).Should().BeEquivalentTo(HangingProbes.Select(row => (string)row[0]));

    [Theory]
    [MemberData(nameof(HangingProbes))]
    public async Task Cancellation_IsHonoured_WhileTheProbeWaitsOnATargetThatNeverAnswers(string type, string with, bool waits)
    {
        var probe = RealPlugins.Create(type, _targets.Fill(with));
        var connections = _targets.Hanging.Connections;
        Func<bool>? engaged = with.Contains("{url}") || with.Contains("{port}") ? () => _targets.Hanging.Connections > connections : null;
        var check = await Sentinel.Plugins.Testing.PluginConformance.AssertHonoursCancellationAsync(probe, TimeSpan.FromSeconds(2), engaged);
        check.Waited.Should().Be(waits, waits ? "the probe must have been waiting on the silent target when it was cancelled"
            : "a file probe refuses a FIFO at once instead of waiting in open() for a writer");
        (probe as IDisposable)?.Dispose();
    }

    [Theory]
    [InlineData("process", "{ pidfile: '{fifo}' }", "is a FIFO (named pipe), not a file")]
    [InlineData("log-regex", "{ path: '{fifo}', pattern: ERROR }", "is a FIFO (named pipe), not a file")]
    [InlineData("file-valid", "{ path: '{fifo}' }", "is a FIFO (named pipe), not a file")]
    public async Task AFifo_IsReportedAsNotAFile_AtOnce(string type, string with, string says)
    {
        var result = await RealPlugins.Create(type, _targets.Fill(with)).CheckAsync().Within(TimeSpan.FromSeconds(5));
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain(says);
    }

    [Fact]
    public void EveryFirstPartyPlugin_PassesTheKitsContractCheck()
    {
        var plugins = RealPlugins.Catalog.Plugins.SelectMany(p => p.Types).Select(t => t.ImplementationType.Assembly).Distinct()
            .SelectMany(a => a.GetExportedTypes().Where(t => typeof(ISentinelPlugin).IsAssignableFrom(t) && !t.IsAbstract)).ToList();
        plugins.Should().HaveCountGreaterThanOrEqualTo(8);
        foreach (var type in plugins) Sentinel.Plugins.Testing.PluginConformance.AssertContract((ISentinelPlugin)Activator.CreateInstance(type)!);
    }

    /// <summary>Each action type with a `with:` block that fails on this machine, and one that would run for long.</summary>
    public static TheoryData<string, string, string> Actions => new()
    {
        { "exec", "{ command: [/bin/false] }", "{ command: [sleep, '30'] }" },
        { "signal", "{ pidfile: /nonexistent/sentinel-test.pid }", "{ name: sentinel-no-such-process }" },
        { "console", "{ }", "{ }" },
        { "backup", "{ path: /nonexistent/sentinel-test.json, backup-dir: /proc/sentinel-test-backups }", "{ path: /nonexistent/sentinel-test.json, backup-dir: /proc/sentinel-test-backups }" },
        { "restore", "{ path: /nonexistent/sentinel-test.json, backup-dir: /nonexistent/backups }", "{ path: /nonexistent/sentinel-test.json, backup-dir: /nonexistent/backups }" },
        { "cleanup", "{ roots: [/nonexistent/sentinel-test], patterns: ['*.log'], max-age: 1d, mode: compress }", "{ roots: [/nonexistent/sentinel-test], patterns: ['*.log'], max-age: 1d }" },
        { "healthchecks", "{ base: 'http://127.0.0.1:1', uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278 }", "{ base: '{url}', uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278 }" },
        { "file", "{ path: /proc/sentinel-cannot-write/x.jsonl }", "{ path: /proc/sentinel-cannot-write/x.jsonl }" },
        { "webhook", "{ url: 'http://127.0.0.1:1/hook' }", "{ url: '{url}hook' }" },
        { "email", "{ host: 127.0.0.1, port: 1, tls: none, from: a@example.test, to: [b@example.test] }", "{ host: 127.0.0.1, port: {port}, tls: none, from: a@example.test, to: [b@example.test] }" },
        { "twilio-sms", "{ account-sid: AC1, auth-token: t, from: '+15550001111', to: ['+15550002222'], base-url: 'http://127.0.0.1:1' }", "{ account-sid: AC1, auth-token: t, from: '+15550001111', to: ['+15550002222'], base-url: '{url}' }" },
    };

    [Fact]
    public void EveryRegisteredAction_IsCovered()
        => RealPlugins.Catalog.Names(Sentinel.Engine.Model.PluginKind.Action).Should().BeEquivalentTo(Actions.Select(row => (string)row[0]));

    public static TheoryData<string> ActionTypes => new(Actions.Select(row => (string)row[0]));

    [Theory]
    [MemberData(nameof(ActionTypes))]
    public void ActionTypes_AreSealed_Internal_Described_AndRejectUnknownKeys(string type)
    {
        var reg = RealPlugins.Action(type);
        reg.ImplementationType.IsSealed.Should().BeTrue();
        reg.OptionsType.IsSealed.Should().BeTrue();
        reg.ImplementationType.IsPublic.Should().BeFalse();
        KebabName().IsMatch(type).Should().BeTrue();
        reg.Description.Should().NotBeNullOrWhiteSpace();
        RealPlugins.Bind(type, "{ definitely-not-an-option: 1 }", Sentinel.Engine.Model.PluginKind.Action).Errors
            .Should().Contain(e => e.Message.Contains("unknown key 'definitely-not-an-option'"));
    }

    [Theory]
    [MemberData(nameof(Actions))]
    public async Task FailingAction_Throws_WithAMessage(string type, string failing, string _)
    {
        var (_, error) = await RealPlugins.CreateAction(type, failing).RunAsync();
        error.Should().NotBeNull("an action reports failure by throwing; the engine isolates it");
        error!.Message.Should().NotBeNullOrWhiteSpace();
    }

    private static readonly HashSet<string> Channels = ["console", "file", "webhook", "email", "twilio-sms"];

    [Theory]
    [MemberData(nameof(Actions))]
    public async Task Action_HonoursCancellation_WhileItWaits(string type, string _, string slow)
    {
        var action = RealPlugins.CreateAction(type, _targets.Fill(slow));
        var network = slow.Contains("{url}") || slow.Contains("{port}");
        var connections = _targets.Hanging.Connections;
        using var cancel = new CancellationTokenSource();
        var run = Channels.Contains(type)
            ? action.NotifyAsync(RealPlugins.SampleNotification(), cancel.Token)
            : action.RunAsync(cancellationToken: cancel.Token);
        // Cancelled while it waits: on the silent listener for the network actions, in `sleep 30` for exec.
        if (network)
        {
            await Eventually.Until(() => _targets.Hanging.Connections > connections || run.IsCompleted, what: $"{type} connecting to the silent listener");
            if (run.IsCompleted) throw new InvalidOperationException($"{type} did not wait on the silent listener: {(await run).Error}");
        }
        else if (type == "exec")
        {
            await Eventually.Until(() => run.IsCompleted || global::System.Diagnostics.Process.GetProcessesByName("sleep").Length > 0, what: "exec running sleep");
            run.IsCompleted.Should().BeFalse("exec waits for its command");
        }
        var clock = Stopwatch.StartNew();
        await cancel.CancelAsync();
        await run.Within(TimeSpan.FromSeconds(10), $"{type} to return after its token was cancelled");
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(2));
    }

    [GeneratedRegex("^[a-z][a-z0-9-]*$")]
    private static partial Regex KebabName();
}
