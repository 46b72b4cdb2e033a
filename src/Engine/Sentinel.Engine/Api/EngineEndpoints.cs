using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Api;

/// <summary>The engine's HTTP surface: <c>GET /health</c> and <c>GET /api/status</c>.</summary>
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
        return app;
    }
}
