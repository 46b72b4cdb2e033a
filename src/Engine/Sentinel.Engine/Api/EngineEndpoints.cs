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
        return app;
    }
}
