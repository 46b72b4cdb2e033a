using System.Diagnostics;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests;

/// <summary>
/// What every first-party probe promises, checked on each through the real loader: sealed types, stable
/// kebab-case names, options that validate with clear messages, a failing target reported (never thrown),
/// cancellation honoured promptly. A new probe adds a row to <see cref="Probes"/>.
/// </summary>
public sealed partial class ConformanceTests
{
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
        => RealPlugins.Catalog.Names(Sentinel.Engine.Plugins.PluginKind.Probe).Should().BeEquivalentTo(Probes.Select(row => (string)row[0]));

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

    [Theory]
    [MemberData(nameof(Probes))]
    public async Task Cancellation_IsHonouredPromptly(string type, string with)
    {
        var probe = RealPlugins.Create(type, with);
        await Sentinel.Plugins.Testing.PluginConformance.AssertHonoursCancellationAsync(probe);
        (probe as IDisposable)?.Dispose();
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
        { "healthchecks", "{ base: 'http://127.0.0.1:1', uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278 }", "{ base: 'http://127.0.0.1:1', uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278 }" },
        { "file", "{ path: /proc/sentinel-cannot-write/x.jsonl }", "{ path: /proc/sentinel-cannot-write/x.jsonl }" },
        { "webhook", "{ url: 'http://127.0.0.1:1/hook' }", "{ url: 'http://127.0.0.1:1/hook' }" },
        { "email", "{ host: 127.0.0.1, port: 1, tls: none, from: a@example.test, to: [b@example.test] }", "{ host: 127.0.0.1, port: 1, tls: none, from: a@example.test, to: [b@example.test] }" },
        { "twilio-sms", "{ account-sid: AC1, auth-token: t, from: '+15550001111', to: ['+15550002222'], base-url: 'http://127.0.0.1:1' }", "{ account-sid: AC1, auth-token: t, from: '+15550001111', to: ['+15550002222'], base-url: 'http://127.0.0.1:1' }" },
    };

    [Fact]
    public void EveryRegisteredAction_IsCovered()
        => RealPlugins.Catalog.Names(Sentinel.Engine.Plugins.PluginKind.Action).Should().BeEquivalentTo(Actions.Select(row => (string)row[0]));

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
        RealPlugins.Bind(type, "{ definitely-not-an-option: 1 }", Sentinel.Engine.Plugins.PluginKind.Action).Errors
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

    [Theory]
    [MemberData(nameof(Actions))]
    public async Task Action_HonoursCancellationPromptly(string type, string _, string slow)
    {
        using var cancelled = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();
        await RealPlugins.CreateAction(type, slow).RunAsync(cancellationToken: cancelled.Token).WaitAsync(TimeSpan.FromSeconds(10));
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(2));
    }

    [GeneratedRegex("^[a-z][a-z0-9-]*$")]
    private static partial Regex KebabName();
}
