using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Host.Tests;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Healthchecks;

/// <summary>The `healthchecks` action against a local server speaking hc-ping.com's protocol.</summary>
public sealed class HealthchecksPingerTests
{
    private const string Uuid = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278";

    private static async Task<Exception?> Ping(IAction action, string kind, string body = "", Guid? rid = null)
    {
        var context = new ActionContext
        {
            RuleName = "job", Event = kind, Message = body, RunId = rid, TimeProvider = TimeProvider.System, Logger = NullLogger.Instance,
        };
        try { await action.ExecuteAsync(context, default); }
        catch (Exception ex) { return ex; }
        return null;
    }

    [Fact]
    public async Task UuidForm_SendsEveryKind_WithRid()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        var action = RealPlugins.CreateAction("healthchecks", $"{{ base: '{hc.Url}', uuid: {Uuid} }}");
        var rid = Guid.NewGuid();
        foreach (var kind in new[] { "start", "success", "fail", "log", "exit:3" }) (await Ping(action, kind, $"{kind} body", rid)).Should().BeNull();
        hc.Pings.Select(p => p.Kind).Should().Equal("start", "success", "fail", "log", "3");
        hc.Pings.Should().OnlyContain(p => p.Check == Uuid && p.Rid == rid.ToString());
        hc.Pings.Last().Body.Should().Be("exit:3 body");
    }

    [Fact]
    public async Task SlugForm_AndFullUrl_Work()
    {
        await using var hc = await PingServer.StartAsync("fqOOd6-F4MMNuCEnzTU01w/backup-db", Uuid);
        (await Ping(RealPlugins.CreateAction("healthchecks", $"{{ base: '{hc.Url}', ping-key: fqOOd6-F4MMNuCEnzTU01w, slug: backup-db }}"), "start")).Should().BeNull();
        (await Ping(RealPlugins.CreateAction("healthchecks", $"{{ url: '{hc.Url}/{Uuid}' }}"), "success")).Should().BeNull();
        hc.Pings.Select(p => (p.Check, p.Kind)).Should().Equal(("fqOOd6-F4MMNuCEnzTU01w/backup-db", "start"), (Uuid, "success"));
    }

    [Fact]
    public async Task BodyIsCutToTheServersLimit_OnceItHasSaidIt()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        hc.BodyLimit = 10;
        var action = RealPlugins.CreateAction("healthchecks", $"{{ base: '{hc.Url}', uuid: {Uuid} }}");
        await Ping(action, "log", new string('a', 50));
        await Ping(action, "log", new string('b', 50));
        hc.Pings.Select(p => p.Body.Length).Should().Equal(50, 10);
    }

    [Fact]
    public async Task UnknownCheck_IsPermanent_ServerTrouble_IsRetryable()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        var wrong = await Ping(RealPlugins.CreateAction("healthchecks", $"{{ base: '{hc.Url}', uuid: {Guid.NewGuid()} }}"), "success");
        wrong.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeTrue();
        wrong!.Message.Should().Contain("answered 404 'not found': no such check");
        hc.FailNext(1);
        var busy = await Ping(RealPlugins.CreateAction("healthchecks", $"{{ base: '{hc.Url}', uuid: {Uuid} }}"), "success");
        busy.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeFalse();
    }

    [Theory]
    [InlineData("{ }", "say which check: url, or uuid, or ping-key with slug")]
    [InlineData("{ uuid: not-a-uuid }", "uuid is not a UUID (8-4-4-4-12 hex digits")] // not echoed: it is a secret
    [InlineData("{ ping-key: k }", "ping-key and slug go together")]
    public void BadOptions_AreConfigErrors(string with, string expected)
        => RealPlugins.Bind("healthchecks", with, Sentinel.Engine.Model.PluginKind.Action).Errors.Should().Contain(e => e.Message.Contains(expected));
}
