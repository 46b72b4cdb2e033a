using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.State;

namespace Sentinel.Engine.Api;

/// <summary>
/// The engine's HTTP surface: the status page at <c>/</c>, <c>/health</c>, <c>/metrics</c>, the REST API under
/// <c>/api</c> (reads open; changing calls need the bearer token), and healthchecks-style pings under <c>/ping</c>.
/// Every JSON answer passes the <see cref="Redactor"/>. See docs/api.md.
/// </summary>
internal static class EngineEndpoints
{
    private static readonly string[] Routes =
    [
        "GET  /                          the status page",
        "GET  /health                    200 while the scheduler runs, else 503",
        "GET  /metrics                   Prometheus metrics",
        "GET  /api/status                engine, plugins, config errors, every rule (?recent=30 adds durations for sparklines)",
        "GET  /api/rules                 every rule's state",
        "GET  /api/rules/{rule}          one rule: state, definition (secrets masked), last checks",
        "GET  /api/rules/{rule}/history  checks (?since=24h or from=&to=, limit=500) or hourly counts (&resolution=hour)",
        "GET  /api/incidents             open incidents, then recent ones, with their messages (?rule=, limit=)",
        "GET  /api/incidents/{id}        one incident with its messages",
        "GET  /api/plugins               loaded plugins and load errors",
        "GET  /api/config                config file, validity, errors of the last rejected change",
        "GET  /api/events                the last events (?limit=50); with Accept: text/event-stream, a live stream",
        "POST /api/rules/{rule}/pause    stop checking the rule (token)",
        "POST /api/rules/{rule}/resume   check it again (token)",
        "POST /api/rules/{rule}/run      check it now; answers the check (token)",
        "POST /api/rules/{rule}/remediate  one remediation attempt now, whatever the backoff and budget (token)",
        "POST /api/rules/{rule}/stop     stop its supervised service and hold it stopped, its rule paused (token)",
        "POST /api/rules/{rule}/start    start its supervised service (a fresh start) and resume its rule (token)",
        "POST /api/rules/{rule}/restart  restart its supervised service now, outside the budget (token)",
        "POST /api/incidents/{id}/ack    acknowledge: escalations and reminders stop (token)",
    ];

    public static IEndpointRouteBuilder MapSentinel(this IEndpointRouteBuilder app, IEngineApi engine)
    {
        app.MapGet("/", () => Results.Content(StatusPage.Html, "text/html; charset=utf-8"))
            .AddEndpointFilter(async (ctx, next) =>
            {
                var h = ctx.HttpContext.Response.Headers;
                h.CacheControl = "no-cache";
                // Nothing from elsewhere: the page must work on a box without internet.
                h.ContentSecurityPolicy = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";
                h.XContentTypeOptions = "nosniff";
                return await next(ctx);
            });
        app.MapGet("/health", () =>
        {
            var (healthy, reason) = engine.GetHealth();
            return Results.Json(new { status = healthy ? "ok" : "unavailable", reason }, SentinelJson.Options,
                statusCode: healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await engine.Metrics.WriteAsync(ctx.Response.Body, ctx.RequestAborted);
        });

        var api = app.MapGroup("/api");
        api.MapGet("", () => Results.Text(string.Join("\n", Routes) + "\n"));
        api.MapGet("/status", (int? recent) => Json(engine, engine.GetStatus(Math.Clamp(recent ?? 0, 0, History.HistoryRecorder.RecentSize))));
        api.MapGet("/rules", () => Json(engine, engine.GetStatus().Rules));
        api.MapGet("/rules/{rule}", (string rule) => engine.GetRule(rule) is { } detail ? Json(engine, detail) : NoRule(engine, rule));
        api.MapGet("/rules/{rule}/history", HistoryAsync);
        api.MapGet("/incidents", async (string? rule, int? limit, CancellationToken ct)
            => Json(engine, await engine.GetIncidentsAsync(ct, rule, Math.Clamp(limit ?? 100, 1, 1000))));
        api.MapGet("/incidents/{id:long}", async (long id, CancellationToken ct)
            => (await engine.GetIncidentsAsync(ct, limit: 1000)).FirstOrDefault(i => i.Incident.Id == id) is { } found
                ? Json(engine, found) : Error(engine, StatusCodes.Status404NotFound, $"there is no incident #{id} (GET /api/incidents lists them)"));
        api.MapGet("/plugins", () =>
        {
            var s = engine.GetStatus();
            return Json(engine, new { plugins = s.Plugins, errors = s.PluginErrors });
        });
        api.MapGet("/config", () =>
        {
            var s = engine.GetStatus();
            return Json(engine, new { file = s.ConfigFile, files = engine.Config.Files, s.Config.Valid, s.Config.RejectedAt, s.Config.Errors });
        });
        api.MapGet("/events", (HttpContext ctx, int? limit) => EventsAsync(ctx, engine, limit));

        api.MapPost("/rules/{rule}/pause", async (string rule, HttpContext ctx) => (await Authorized(engine, ctx) ?? await ElsewhereAsync(engine, ctx, rule))
            ?? (await engine.SetPausedAsync(rule, true, ctx.RequestAborted) ? Json(engine, new { rule, status = "paused" }) : NoRule(engine, rule)));
        api.MapPost("/rules/{rule}/resume", async (string rule, HttpContext ctx) => (await Authorized(engine, ctx) ?? await ElsewhereAsync(engine, ctx, rule))
            ?? (await engine.SetPausedAsync(rule, false, ctx.RequestAborted) ? Json(engine, new { rule, status = engine.GetState(rule)?.Status }) : NoRule(engine, rule)));
        api.MapPost("/rules/{rule}/run", async (string rule, HttpContext ctx) =>
        {
            if ((await Authorized(engine, ctx) ?? await ElsewhereAsync(engine, ctx, rule)) is { } denied) return denied;
            if (!engine.HasRule(rule)) return NoRule(engine, rule);
            if (engine.GetState(rule) is { Status: RuleStatus.Paused })
                return Error(engine, StatusCodes.Status409Conflict, $"rule '{rule}' is paused: resume it first (POST /api/rules/{rule}/resume)");
            return await engine.RunNowAsync(rule, ctx.RequestAborted) is { } check
                ? Json(engine, new { rule, check, status = engine.GetState(rule)?.Status })
                : Error(engine, StatusCodes.Status409Conflict, $"a check of '{rule}' is already running; its result will show in GET /api/rules/{rule}");
        });
        api.MapPost("/rules/{rule}/remediate", async (string rule, HttpContext ctx) =>
        {
            if ((await Authorized(engine, ctx) ?? await ElsewhereAsync(engine, ctx, rule)) is { } denied) return denied;
            if (!engine.HasRule(rule)) return NoRule(engine, rule);
            var (ran, ok, message) = await engine.RemediateNowAsync(rule, "the API");
            return ran ? Json(engine, new { rule, remediated = ok, message }) : Error(engine, StatusCodes.Status409Conflict, message);
        });
        foreach (var verb in new[] { "stop", "start", "restart" })
            api.MapPost("/rules/{rule}/" + verb, async (string rule, HttpContext ctx) =>
            {
                if ((await Authorized(engine, ctx) ?? await ElsewhereAsync(engine, ctx, rule)) is { } denied) return denied;
                if (!engine.HasRule(rule)) return NoRule(engine, rule);
                var (status, message) = await engine.ControlServiceAsync(rule, verb, ctx.RequestAborted);
                return status == 200 ? Json(engine, new { rule, message, service = engine.GetRule(rule)?.State.Service }) : Error(engine, status, message);
            });
        api.MapPost("/incidents/{id:long}/ack", async (long id, HttpContext ctx) => await Authorized(engine, ctx) ?? (await engine.AckAsync(id, ctx.RequestAborted)
            ? Json(engine, new { acknowledged = id })
            : Error(engine, StatusCodes.Status404NotFound, $"there is no open incident #{id} (GET /api/incidents lists them)")));

        app.MapMethods("/ping/{a}/{**rest}", ["GET", "POST", "HEAD"], (string a, string? rest, HttpContext ctx) => PingAsync(engine.Pings, a, rest, ctx));
        app.MapMethods("/ping/{a}", ["GET", "POST", "HEAD"], (string a, HttpContext ctx) => PingAsync(engine.Pings, a, null, ctx));
        return app;

        async Task<IResult> HistoryAsync(string rule, string? since, DateTimeOffset? from, DateTimeOffset? to, int? limit, string? resolution, CancellationToken ct)
        {
            if (engine.History is null) return Error(engine, StatusCodes.Status404NotFound, "history is off (engine.history.enabled: false)");
            var now = engine.Now;
            // A removed rule's history stays readable until it ages out.
            if (!engine.HasRule(rule) && (await engine.History.HourlyAsync(rule, now - engine.History.Settings.DownsampledRetention, now, ct)).Count == 0)
                return NoRule(engine, rule);
            TimeSpan window = TimeSpan.FromHours(24);
            if (since is not null && !Duration.TryParse(since, out window))
                return Error(engine, StatusCodes.Status400BadRequest, $"since '{since}' is not a duration: write e.g. since=1h or since=7d");
            var end = to ?? now;
            var start = from ?? end - window;
            if (resolution is "hour" or "hourly")
                return Json(engine, new { rule, resolution = "hour", from = start, to = end, hours = await engine.History.HourlyAsync(rule, start, end, ct) });
            if (resolution is not (null or "check"))
                return Error(engine, StatusCodes.Status400BadRequest, $"resolution '{resolution}' is not one of: check, hour");
            var checks = await engine.History.ChecksAsync(rule, start, end, Math.Clamp(limit ?? 500, 1, 100_000), ct);
            return Json(engine, new { rule, resolution = "check", from = start, to = end, uptime = engine.History.Uptime(rule), checks });
        }
    }

    private static async Task EventsAsync(HttpContext ctx, IEngineApi engine, int? limit)
    {
        if (!ctx.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.Ordinal))
        {
            await Json(engine, engine.Activity.Recent(Math.Clamp(limit ?? 50, 1, 200))).ExecuteAsync(ctx);
            return;
        }
        // Server-sent events: one "activity" event per entry, and a comment every 15 s so proxies keep the stream open.
        // The stream ends when the client goes or Sentinel stops (an open page must not hold up a shutdown).
        var stopping = ctx.RequestServices.GetService(typeof(Microsoft.Extensions.Hosting.IHostApplicationLifetime)) is Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime
            ? lifetime.ApplicationStopping : CancellationToken.None;
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
        var token = ended.Token;
        ctx.Response.Headers.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        // Listening starts before the first byte goes out: a client that saw the stream open misses nothing after it.
        using var listener = engine.Activity.Listen();
        await ctx.Response.WriteAsync("retry: 2000\n\n", token);
        await ctx.Response.Body.FlushAsync(token);
        using var keepAlive = new PeriodicTimer(TimeSpan.FromSeconds(15));
        var write = new SemaphoreSlim(1, 1);
        var pings = Task.Run(async () =>
        {
            while (await keepAlive.WaitForNextTickAsync(token))
            {
                await write.WaitAsync(token);
                try { await ctx.Response.WriteAsync(": keep-alive\n\n", token); await ctx.Response.Body.FlushAsync(token); }
                finally { write.Release(); }
            }
        });
        try
        {
            await foreach (var e in listener.Reader.ReadAllAsync(token))
            {
                var data = engine.Redactor.Apply(JsonSerializer.Serialize(e, SentinelJson.Options));
                await write.WaitAsync(token);
                try
                {
                    await ctx.Response.WriteAsync($"id: {e.Id}\nevent: activity\ndata: {data}\n\n", token);
                    await ctx.Response.Body.FlushAsync(token);
                }
                finally { write.Release(); }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested) { }
        catch (IOException) { } // the client went away mid-write
        finally
        {
            await ended.CancelAsync();
            try { await pings; } catch (Exception e) when (e is OperationCanceledException or IOException) { }
        }
    }

    /// <summary>JSON with the running configuration's secrets replaced.</summary>
    private static IResult Json(IEngineApi engine, object value, int statusCode = StatusCodes.Status200OK)
        => Results.Text(engine.Redactor.Apply(JsonSerializer.Serialize(value, value.GetType(), SentinelJson.Options)), "application/json; charset=utf-8", Encoding.UTF8, statusCode);

    private static IResult Error(IEngineApi engine, int statusCode, string message) => Json(engine, new { error = message }, statusCode);

    // Cluster mode: a command about a rule another node runs goes to that node, and its answer comes back (acted on
    // here too, the rule would be acted on twice); when that node cannot be reached, the answer says why.
    private static async Task<IResult?> ElsewhereAsync(IEngineApi engine, HttpContext ctx, string rule)
    {
        if (engine.RunElsewhere(rule) is not { } node) return null;
        var (api, unreachable) = engine.ApiOf(node);
        if (api is null)
            return Error(engine, StatusCodes.Status409Conflict, $"rule '{rule}' is run by node {node}, and this command cannot be sent there: {unreachable}");
        var relayed = await CommandForwarder.SendAsync(ctx.Request, rule, node, api, engine.Config.Engine.Cluster!.Node, ctx.RequestAborted);
        ctx.Response.Headers[CommandForwarder.ActedOn] = node;
        return relayed.Error is { } error ? Error(engine, relayed.Status, error)
            : Results.Text(engine.Redactor.Apply(relayed.Body), relayed.ContentType ?? "application/json; charset=utf-8", statusCode: relayed.Status);
    }

    private static IResult NoRule(IEngineApi engine, string rule)
    {
        if (engine.GetStatus().Rules.FirstOrDefault(r => r.Name == rule) is { Waiting: { } waiting })
            return Error(engine, StatusCodes.Status409Conflict, $"rule '{rule}' is {waiting}: it is not checked until the plugin is dropped into a plugins folder");
        var hint = DidYouMean.Suffix(rule, engine.GetStatus().Rules.Select(r => r.Name), "rules");
        return Error(engine, StatusCodes.Status404NotFound, $"there is no rule '{rule}'{hint}");
    }

    /// <summary>Null when the request carries the API token; else the 401 to answer.</summary>
    private static Task<IResult?> Authorized(IEngineApi engine, HttpContext ctx)
    {
        var token = engine.ApiToken;
        var header = ctx.Request.Headers.Authorization.ToString();
        if (token is { Length: > 0 } && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[7..].Trim()), Encoding.UTF8.GetBytes(token)))
            return Task.FromResult<IResult?>(null);
        ctx.Response.Headers.WWWAuthenticate = "Bearer realm=\"sentinel\"";
        var why = token is not { Length: > 0 } ? "this Sentinel has no API token set, so changing calls are refused"
            : header.Length == 0 ? "this call changes the engine: send Authorization: Bearer <token> (engine.http.token, $SENTINEL_API_TOKEN, or the state folder's api-token file)"
            : "the bearer token is wrong";
        return Task.FromResult<IResult?>(Error(engine, StatusCodes.Status401Unauthorized, why));
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
            body = Encoding.UTF8.GetString(buffer, 0, Math.Min(read, Heartbeat.PingRegistry.BodyLimit));
        }
        // In a cluster the node that runs the check's rule may be another: a ping the database did not take is refused,
        // so the pinger tries again (curl --retry), rather than answered and never seen where it is judged.
        if (await pings.RecordAsync(key, kind, ctx.Request.Query["rid"].FirstOrDefault(), body, ctx.RequestAborted) == Heartbeat.PingOutcome.NotRecorded)
            return Results.Text("ping not recorded: the cluster's database cannot be written; try again", statusCode: StatusCodes.Status503ServiceUnavailable);
        ctx.Response.Headers["Ping-Body-Limit"] = Heartbeat.PingRegistry.BodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Text("OK");
    }
}
