using Microsoft.AspNetCore.Http;

namespace Sentinel.Engine.Api;

/// <summary>
/// Cluster mode: a command about a rule another node runs (pause, run, restart...) is sent on to that node and its
/// answer relayed as it came: acted on here as well, the rule would be checked or restarted twice. The caller's
/// bearer token goes along (every node of a cluster has the same one). A command is forwarded once at most: one that
/// reaches a node which no longer runs the rule (it moved meanwhile) is refused, never sent round.
/// </summary>
internal static class CommandForwarder
{
    /// <summary>Set on a forwarded command: the node that forwarded it.</summary>
    public const string ForwardedFrom = "X-Sentinel-Forwarded-From";

    /// <summary>Set on a relayed answer: the node that acted on the command.</summary>
    public const string ActedOn = "X-Sentinel-Node";

    /// <summary>How long a forwarded command may take (a `run` waits for its check) before it is answered 504.</summary>
    internal static TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        UseProxy = false, // nodes reach each other directly, not through the box's HTTP proxy
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2), // a node's name is looked up again now and then
    })
    { Timeout = System.Threading.Timeout.InfiniteTimeSpan };

    /// <summary>The answer: the other node's status, body and content type, or this node's own error (with its status).</summary>
    public sealed record Relayed(int Status, string Body, string? ContentType, string? Error = null);

    /// <summary>Sends <paramref name="request"/> (its method, path, query and token) to <paramref name="node"/>'s API at <paramref name="api"/>.</summary>
    public static async Task<Relayed> SendAsync(HttpRequest request, string rule, string node, Uri api, string from, CancellationToken cancellationToken)
    {
        if (request.Headers[ForwardedFrom] is { Count: > 0 } by)
            return Refused(StatusCodes.Status409Conflict,
                $"rule '{rule}' is run by node {node} now, not by this node that node {by} sent this command to (the rule moved meanwhile): send it again");
        var target = new Uri(api, request.PathBase + request.Path + request.QueryString);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), target);
        if (request.Headers.Authorization is { Count: > 0 } authorization) message.Headers.TryAddWithoutValidation("Authorization", authorization.ToString());
        message.Headers.TryAddWithoutValidation(ForwardedFrom, from);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            using var response = await Client.SendAsync(message, timeout.Token);
            var body = await response.Content.ReadAsStringAsync(timeout.Token);
            if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
                return Refused(StatusCodes.Status502BadGateway,
                    $"node {node} runs rule '{rule}' and refused the API token this node accepted: every node of a cluster needs the same engine.http.token (docs/cluster.md)");
            return new Relayed((int)response.StatusCode, body, response.Content.Headers.ContentType?.ToString());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Refused(StatusCodes.Status504GatewayTimeout, $"node {node} runs rule '{rule}' and did not answer at {api} within {Sentinel.Abstractions.Duration.Format(Timeout)}");
        }
        catch (HttpRequestException e)
        {
            return Refused(StatusCodes.Status502BadGateway, $"node {node} runs rule '{rule}' and could not be reached at {api}: {e.Message}");
        }
    }

    private static Relayed Refused(int status, string error) => new(status, "", null, error);
}
