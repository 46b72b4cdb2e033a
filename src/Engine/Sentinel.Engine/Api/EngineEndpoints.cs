using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Api;

/// <summary>The engine's HTTP surface: <c>GET /health</c>, <c>GET /api/status</c>, <c>GET /api/incidents</c>, <c>POST /api/incidents/{id}/ack</c>.</summary>
public static class EngineEndpoints
{
    public static IEndpointRouteBuilder MapSentinel(this IEndpointRouteBuilder app, SentinelEngine engine)
    {
        app.MapGet("/health", () =>
        {
            var (healthy, reason) = engine.GetHealth();
            return Results.Json(new { status = healthy ? "ok" : "unavailable", reason }, SentinelJson.Options,
                statusCode: healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        app.MapGet("/api/status", () => Results.Json(engine.GetStatus(), SentinelJson.Options));
        app.MapGet("/api/incidents", async (CancellationToken ct) => Results.Json(await engine.GetIncidentsAsync(ct), SentinelJson.Options));
        app.MapPost("/api/incidents/{id:long}/ack", async (long id, CancellationToken ct) => await engine.AckAsync(id, ct)
            ? Results.Json(new { acknowledged = id }, SentinelJson.Options)
            : Results.Json(new { error = $"there is no open incident #{id} (GET /api/incidents lists them)" }, SentinelJson.Options, statusCode: StatusCodes.Status404NotFound));
        app.MapMethods("/ping/{a}/{**rest}", ["GET", "POST", "HEAD"], (string a, string? rest, HttpContext ctx) => PingAsync(engine.Pings, a, rest, ctx));
        app.MapMethods("/ping/{a}", ["GET", "POST", "HEAD"], (string a, HttpContext ctx) => PingAsync(engine.Pings, a, null, ctx));
        return app;
    }

    // healthchecks.io's ping API: /ping/{uuid}[/start|/fail|/log|/{0-255}] and /ping/{ping-key}/{slug}[...], same answers.
    private static async Task<IResult> PingAsync(Heartbeat.PingRegistry pings, string a, string? rest, HttpContext ctx)
    {
        var parts = (rest ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        string key;
        string kind;
        if (pings.IsKnown(a)) (key, kind) = (a, parts.Length == 0 ? "success" : parts.Length == 1 ? parts[0] : "");
        else if (parts.Length >= 1 && pings.IsKnown($"{a}/{parts[0]}")) (key, kind) = ($"{a}/{parts[0]}", parts.Length == 1 ? "success" : parts.Length == 2 ? parts[1] : "");
        else return Results.Text("not found", statusCode: StatusCodes.Status404NotFound);
        if (kind is not ("success" or "start" or "fail" or "log") && !(int.TryParse(kind, out var code) && code is >= 0 and <= 255 && kind == code.ToString()))
            return Results.Text("invalid url format", statusCode: StatusCodes.Status400BadRequest);
        if (!pings.TryAcquire(key)) return Results.Text("rate limited", statusCode: StatusCodes.Status429TooManyRequests);
        if (ctx.Request.ContentLength > Heartbeat.PingRegistry.MaxRequestBody)
            return Results.Text("request body too large", statusCode: StatusCodes.Status413PayloadTooLarge);
        var body = "";
        if (!HttpMethods.IsHead(ctx.Request.Method))
        {
            var buffer = new byte[Heartbeat.PingRegistry.MaxRequestBody + 1];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await ctx.Request.Body.ReadAsync(buffer.AsMemory(read))) > 0) read += n;
            if (read > Heartbeat.PingRegistry.MaxRequestBody) return Results.Text("request body too large", statusCode: StatusCodes.Status413PayloadTooLarge);
            body = System.Text.Encoding.UTF8.GetString(buffer, 0, Math.Min(read, Heartbeat.PingRegistry.BodyLimit));
        }
        pings.Record(key, kind, ctx.Request.Query["rid"].FirstOrDefault(), body);
        ctx.Response.Headers["Ping-Body-Limit"] = Heartbeat.PingRegistry.BodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Text("OK");
    }
}
