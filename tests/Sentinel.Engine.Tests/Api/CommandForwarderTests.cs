using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sentinel.Engine.Api;

namespace Sentinel.Engine.Tests.Api;

/// <summary>
/// Cluster mode's command forwarding, against a real Kestrel server on a free loopback port that stands in for the
/// node running the rule: what is sent there, what comes back, and each way it can fail.
/// </summary>
public sealed class CommandForwarderTests : IAsyncLifetime
{
    private WebApplication? _node;
    private Uri _api = null!;
    private readonly ConcurrentQueue<(string Method, string Path, string Auth, string From)> _received = new();
    private volatile int _answer = 200;
    private volatile TaskCompletionSource? _hold;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _node = builder.Build();
        _node.MapPost("/api/rules/{rule}/{verb}", async (HttpContext ctx, string rule, string verb) =>
        {
            _received.Enqueue((ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString, ctx.Request.Headers.Authorization.ToString(),
                ctx.Request.Headers[CommandForwarder.ForwardedFrom].ToString()));
            if (_hold is { } hold) await hold.Task;
            return Results.Text($$"""{"rule":"{{rule}}","status":"{{verb}}d"}""", "application/json; charset=utf-8", statusCode: _answer);
        });
        await _node.StartAsync();
        _api = new Uri(_node.Urls.First());
    }

    public async Task DisposeAsync()
    {
        _hold?.TrySetResult();
        if (_node is not null) await _node.DisposeAsync();
    }

    private static HttpRequest Request(string path, string? token = "Bearer s3cret", string? forwardedBy = null, string query = "")
    {
        var ctx = new DefaultHttpContext();
        ctx.Request.Method = "POST";
        ctx.Request.Path = path;
        ctx.Request.QueryString = new QueryString(query);
        if (token is not null) ctx.Request.Headers.Authorization = token;
        if (forwardedBy is not null) ctx.Request.Headers[CommandForwarder.ForwardedFrom] = forwardedBy;
        return ctx.Request;
    }

    [Fact]
    public async Task TheCommand_GoesToTheNode_WithTheTokenAndTheSender_AndItsAnswerComesBackAsItCame()
    {
        var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/pause", query: "?why=deploy"), "web", "n2", _api, "n1", default);

        relayed.Should().Be(new CommandForwarder.Relayed(200, """{"rule":"web","status":"paused"}""", "application/json; charset=utf-8"));
        _received.Should().Equal(("POST", "/api/rules/web/pause?why=deploy", "Bearer s3cret", "n1"));
    }

    [Fact]
    public async Task TheNodesRefusal_IsRelayedWithItsStatus()
    {
        _answer = 409;

        var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/run"), "web", "n2", _api, "n1", default);

        (relayed.Status, relayed.Body, relayed.Error).Should().Be((409, """{"rule":"web","status":"rund"}""", null));
    }

    [Fact]
    public async Task ATokenTheNodeRefuses_IsToldAsTheClustersTokensDiffering()
    {
        _answer = 401;

        var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/pause"), "web", "n2", _api, "n1", default);

        relayed.Status.Should().Be(502);
        relayed.Error.Should().Be("node n2 runs rule 'web' and refused the API token this node accepted: every node of a cluster needs the same engine.http.token (docs/cluster.md)");
    }

    [Fact]
    public async Task ACommandForwardedOnce_IsNeverForwardedAgain()
    {
        var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/pause", forwardedBy: "n3"), "web", "n2", _api, "n1", default);

        relayed.Status.Should().Be(409);
        relayed.Error.Should().Be("rule 'web' is run by node n2 now, not by this node that node n3 sent this command to (the rule moved meanwhile): send it again");
        _received.Should().BeEmpty("a command sent round between nodes could be acted on twice");
    }

    [Fact]
    public async Task ANodeThatDoesNotAnswer_IsNamedWithItsAddress()
    {
        // A port that was free a moment ago: nothing listens there.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var closed = new Uri($"http://127.0.0.1:{((IPEndPoint)socket.LocalEndPoint!).Port}/");
        socket.Close();

        var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/restart"), "web", "n2", closed, "n1", default);

        relayed.Status.Should().Be(502);
        relayed.Error.Should().StartWith($"node n2 runs rule 'web' and could not be reached at {closed}: ");
    }

    [Fact]
    public async Task ANodeThatAnswersTooLate_Is504_AndTheCommandIsNotLeftHanging()
    {
        _hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var before = CommandForwarder.Timeout;
        CommandForwarder.Timeout = TimeSpan.FromMilliseconds(300);
        try
        {
            var relayed = await CommandForwarder.SendAsync(Request("/api/rules/web/run"), "web", "n2", _api, "n1", default);

            relayed.Status.Should().Be(504);
            relayed.Error.Should().Be($"node n2 runs rule 'web' and did not answer at {_api} within 300ms");
        }
        finally
        {
            CommandForwarder.Timeout = before;
        }
    }
}
