using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Notify;

/// <summary>Twilio's Messages API is stood in for by a local server that checks the documented request and answers like Twilio.</summary>
public sealed class TwilioSmsNotifierTests : IAsyncLifetime
{
    private const string Sid = "AC0123456789abcdef0123456789abcdef";
    private const string Token = "secret-token";
    private readonly ConcurrentQueue<(string Auth, Dictionary<string, string> Form)> _requests = new();
    private KestrelServer _twilio = null!;

    public async Task InitializeAsync() => _twilio = await KestrelServer.StartAsync(routes: app =>
        app.MapPost("/2010-04-01/Accounts/{sid}/Messages.json", async (string sid, HttpContext ctx) =>
        {
            var form = (await ctx.Request.ReadFormAsync()).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
            var auth = ctx.Request.Headers.Authorization.ToString();
            _requests.Enqueue((auth, form));
            ctx.Response.ContentType = "application/json";
            if (auth != "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Sid}:{Token}")) || sid != Sid)
            {
                ctx.Response.StatusCode = 401;
                await ctx.Response.WriteAsync("""{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}""");
                return;
            }
            if (form["To"] == "+15005550001")
            {
                ctx.Response.StatusCode = 400;
                await ctx.Response.WriteAsync("""{"code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}""");
                return;
            }
            if (form["To"] == "+15005550009")
            {
                ctx.Response.StatusCode = 429;
                await ctx.Response.WriteAsync("""{"code": 20429, "message": "Too Many Requests", "status": 429}""");
                return;
            }
            ctx.Response.StatusCode = 201;
            await ctx.Response.WriteAsync($$"""{"sid": "SM{{Guid.NewGuid():N}}", "status": "queued", "to": "{{form["To"]}}", "body": "x"}""");
        }));

    public async Task DisposeAsync() => await _twilio.DisposeAsync();

    private IAction Create(string to, string extra = "") => RealPlugins.CreateAction("twilio-sms",
        $"{{ account-sid: {Sid}, auth-token: {Token}, from: '+15550001111', to: [{to}], base-url: 'http://127.0.0.1:{_twilio.Port}/'{extra} }}");

    [Fact]
    public async Task EachRecipient_GetsTheDocumentedRequest()
    {
        var (output, error) = await Create("'+15550002222', '+15550003333'").NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeNull();
        _requests.Should().HaveCount(2);
        _requests.Select(r => r.Form["To"]).Should().Equal("+15550002222", "+15550003333");
        _requests.Should().OnlyContain(r => r.Form["From"] == "+15550001111" && r.Form["Body"] == "DOWN api: GET http://127.0.0.1:8080/health -> 503 (since 12:00Z)");
        output.Should().HaveCount(2).And.OnlyContain(l => l.Contains("accepted (201) sid SM") && l.Contains("status queued"));
    }

    [Fact]
    public async Task InvalidNumber_IsPermanent_WithTwiliosCodeAndMessage()
    {
        var (_, error) = await Create("'+15005550001'").NotifyAsync(RealPlugins.SampleNotification());
        var failure = error.Should().BeOfType<ActionFailedException>().Subject;
        failure.Permanent.Should().BeTrue();
        failure.Message.Should().Be("Twilio refused the message to +15005550001: 400 error 21211: The 'To' number +15005550001 is not a valid phone number.");
    }

    [Fact]
    public async Task TooManyRequests_IsRetryable_AndARetryTextsOnlyWhoDidNotGetIt()
    {
        var action = Create("'+15550002222', '+15005550009'");
        var (_, error) = await action.NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeFalse();
        await action.NotifyAsync(RealPlugins.SampleNotification());
        _requests.Count(r => r.Form["To"] == "+15550002222").Should().Be(1, "accepted once, not texted again on the retry");
        _requests.Count(r => r.Form["To"] == "+15005550009").Should().Be(2);
    }

    [Fact]
    public async Task ApiKeyAuth_AndMessagingService_AreSentAsDocumented()
    {
        var action = RealPlugins.CreateAction("twilio-sms",
            $"{{ account-sid: {Sid}, api-key-sid: SKkey, api-key-secret: keysecret, messaging-service-sid: MG123, to: ['+15550002222'], base-url: 'http://127.0.0.1:{_twilio.Port}' }}");
        await action.NotifyAsync(RealPlugins.SampleNotification());
        var (auth, form) = _requests.Single();
        auth.Should().Be("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("SKkey:keysecret")));
        form.Should().ContainKey("MessagingServiceSid").WhoseValue.Should().Be("MG123");
        form.Should().NotContainKey("From");
    }

    [Fact]
    public async Task LongBodies_AreCutAtAWordToFit()
    {
        var n = RealPlugins.SampleNotification();
        var longOne = new Notification { Subject = n.Subject, Text = n.Text, Short = string.Join(' ', Enumerable.Repeat("word", 100)), Items = n.Items };
        await Create("'+15550002222'", ", max-length: 60").NotifyAsync(longOne);
        var body = _requests.Single().Form["Body"];
        body.Length.Should().BeLessThanOrEqualTo(60);
        body.Should().EndWith("word…");
    }

    [Theory]
    [InlineData("{ account-sid: AC1, from: '+1555', to: ['+15550002222'] }", "set auth-token, or api-key-sid with api-key-secret")]
    [InlineData("{ account-sid: AC1, auth-token: t, to: ['+15550002222'] }", "set from (a number) or messaging-service-sid")]
    [InlineData("{ account-sid: AC1, auth-token: t, from: '+1555', to: ['555-1234'] }", "'555-1234' is not an E.164 number")]
    public void BadOptions_AreConfigErrors(string with, string expected)
    {
        var (_, errors) = RealPlugins.Bind("twilio-sms", with, Sentinel.Engine.Model.PluginKind.Action);
        errors.Should().Contain(e => e.Message.Contains(expected));
    }
}
