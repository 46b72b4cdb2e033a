using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Notify;

public sealed class EmailNotifierTests
{
    private static string Options(int port, string extra = "") =>
        $"{{ host: 127.0.0.1, port: {port}, tls: none, from: 'Sentinel <alerts@example.test>', to: [ops@example.test, dev@example.test], cc: [boss@example.test]{extra} }}";

    [Fact]
    public async Task Message_ArrivesAtARealSmtpServer_WithSubjectRecipientsAndBothBodies()
    {
        using var smtp = await SmtpServer.StartAsync();
        var action = RealPlugins.CreateAction("email", Options(smtp.Port));
        var (output, error) = await action.NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeNull();
        output.Should().ContainSingle().Which.Should().StartWith($"127.0.0.1:{smtp.Port} accepted the message for ops@example.test, dev@example.test, boss@example.test");

        var mail = smtp.Messages().Should().ContainSingle().Subject;
        mail.Subject.Should().Be("[Sentinel] DOWN: api");
        mail.From.ToString().Should().Be("\"Sentinel\" <alerts@example.test>");
        mail.To.Mailboxes.Select(m => m.Address).Should().Equal("ops@example.test", "dev@example.test");
        mail.Cc.Mailboxes.Select(m => m.Address).Should().Equal("boss@example.test");
        mail.TextBody.Should().Contain("saw: GET http://127.0.0.1:8080/health -> 503");
        mail.HtmlBody.Should().Contain("<h3>DOWN: api</h3>");
        mail.Headers["X-Sentinel"].Should().Be("api:down");
    }

    [Fact]
    public async Task ServerDown_IsATransientFailure()
    {
        var action = RealPlugins.CreateAction("email", Options(SmtpServer.FreePort()));
        var (_, error) = await action.NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeFalse();
        error!.Message.Should().StartWith("sending through 127.0.0.1:");
    }

    [Theory]
    [InlineData("{ host: h, from: a@b.c }", "set to: the addresses to mail")]
    [InlineData("{ host: h, from: 'not an address', to: [x@y.z] }", "'not an address' is not an email address")]
    [InlineData("{ host: h, from: a@b.c, to: [x@y.z], password: p }", "password without username")]
    public void BadOptions_AreConfigErrors(string with, string expected)
    {
        var (_, errors) = RealPlugins.Bind("email", with, Sentinel.Engine.Model.PluginKind.Action);
        errors.Should().Contain(e => e.Message.Contains(expected));
    }
}
