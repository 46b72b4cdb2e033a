using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.History;
using Sentinel.Engine.State;
using Spectre.Console;

namespace Sentinel.Host;

/// <summary>
/// `sentinel history RULE`: the rule's checks (or hourly counts) from the running Sentinel's API; when it does not
/// answer, straight from state/history.db (read-only, so it works while the engine is down).
/// </summary>
internal static class HistoryCommand
{
    public static async Task<int> ExecuteAsync(string configPath, string rule, string since, int limit, bool hourly, bool json, CancellationToken ct)
    {
        Bootstrap.SizeConsole();
        if (!Duration.TryParse(since, out var window))
        {
            Console.Error.WriteLine($"error: --since '{since}' is not a duration: write e.g. 1h, 24h or 7d");
            return Bootstrap.ExitConfigInvalid;
        }
        if (limit is < 1 or > 100_000)
        {
            Console.Error.WriteLine($"error: --limit {limit} is out of range: give 1 to 100000");
            return Bootstrap.ExitConfigInvalid;
        }
        using var api = EngineApi.Open(configPath);
        if (api is null) return Bootstrap.ExitConfigInvalid;
        var query = $"/api/rules/{Uri.EscapeDataString(rule)}/history?since={Uri.EscapeDataString(since)}&limit={limit}" + (hourly ? "&resolution=hour" : "");
        var answer = await api.SendAsync(HttpMethod.Get, query, ct, quiet: true);
        JsonElement body;
        if (answer is { Ok: true }) body = answer.Body;
        else if (answer is not null)
        {
            Console.Error.WriteLine($"error: {answer.Error}");
            return 1;
        }
        else if (await FromFileAsync(api, rule, window, limit, hourly, ct) is { } fromFile) body = fromFile;
        else return 1;

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(body, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        if (hourly)
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumn("Hour").AddColumn(new TableColumn("Checks").RightAligned())
                .AddColumn(new TableColumn("Failed").RightAligned()).AddColumn(new TableColumn("Down").RightAligned()).AddColumn(new TableColumn("Uptime").RightAligned())
                .AddColumn(new TableColumn("Avg").RightAligned()).AddColumn(new TableColumn("Max").RightAligned());
            foreach (var h in body.GetProperty("hours").EnumerateArray())
            {
                var checks = h.GetProperty("checks").GetInt64();
                var down = h.GetProperty("down").GetInt64();
                table.AddRow(h.GetProperty("hour").GetDateTimeOffset().ToLocalTime().ToString("yyyy-MM-dd HH:00"), checks.ToString(), h.GetProperty("failures").GetInt64().ToString(),
                    down.ToString(), checks == 0 ? "–" : StatusCommand.Percent((double)(checks - down) / checks),
                    h.GetProperty("durationAverage").GetString() ?? "", h.GetProperty("durationMax").GetString() ?? "");
            }
            AnsiConsole.Write(table);
            return 0;
        }
        var list = new Table().Border(TableBorder.Rounded).AddColumn("Time").AddColumn("Result").AddColumn("Rule state")
            .AddColumn(new TableColumn("Took").RightAligned()).AddColumn("Details");
        var count = 0;
        foreach (var c in body.GetProperty("checks").EnumerateArray())
        {
            count++;
            var status = c.GetProperty("status").GetString() ?? "";
            var color = status switch { "healthy" => "green", "degraded" => "yellow", _ => "red" };
            var state = c.GetProperty("state").GetString() ?? "";
            list.AddRow(c.GetProperty("at").GetDateTimeOffset().ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss"), $"[{color}]{status}[/]",
                state == "down" ? "[red]down[/]" : Markup.Escape(state), c.GetProperty("duration").GetString() ?? "",
                Markup.Escape(c.TryGetProperty("description", out var d) ? d.GetString() ?? "" : ""));
        }
        AnsiConsole.Write(list);
        var u = body.TryGetProperty("uptime", out var up) ? up : default;
        string P(string k) => u.ValueKind == JsonValueKind.Object && u.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Number ? StatusCommand.Percent(v.GetDouble()) : "–";
        Console.WriteLine($"{count} checks in the last {Duration.Format(window)}" + (u.ValueKind == JsonValueKind.Object ? $"; uptime 24h {P("day")}, 7d {P("week")}, 30d {P("month")}" : ""));
        return 0;
    }

    private static async Task<JsonElement?> FromFileAsync(EngineApi api, string rule, TimeSpan window, int limit, bool hourly, CancellationToken ct)
    {
        IHistoryStore store;
        if (api.Settings.Cluster is { } cluster)
        {
            Console.Error.WriteLine("note: Sentinel is not answering; reading the cluster's history from its PostgreSQL database");
            store = PostgresHistoryStore.Open(cluster.ConnectionString, cluster.Node);
        }
        else
        {
            var path = Path.Combine(api.Settings.StateDirectory, "history.db");
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"error: no running Sentinel answered and there is no {path}: start it with `sentinel run`");
                return null;
            }
            Console.Error.WriteLine($"note: Sentinel is not answering; reading {path} (the last few seconds before it stopped may be missing)");
            store = SqliteHistoryStore.OpenReadOnly(path);
        }
        await using (store)
        {
            var now = DateTimeOffset.UtcNow;
            try
            {
                object result = hourly
                    ? new { rule, resolution = "hour", hours = (await store.HourlyAsync(rule, now - window, now, ct)).Summed() }
                    : new { rule, resolution = "check", checks = await store.ChecksAsync(rule, now - window, now, limit, ct) };
                return JsonSerializer.SerializeToElement(result, SentinelJson.Options);
            }
            catch (Npgsql.NpgsqlException ex)
            {
                Console.Error.WriteLine($"error: no running Sentinel answered, and the cluster's database cannot be read: {ex.Message}");
                return null;
            }
        }
    }
}
