using System.Globalization;
using System.Text.Json;
using Sentinel.Engine.Configuration;
using Spectre.Console;

namespace Sentinel.Host;

/// <summary>
/// `sentinel status`: every rule with its state, since when, uptime and last message, from the running Sentinel's API;
/// when it does not answer, from the status.json it last wrote (said so, with its age).
/// </summary>
internal static class StatusCommand
{
    public static async Task<int> ExecuteAsync(string configPath, bool json, CancellationToken ct)
    {
        Bootstrap.SizeConsole();
        using var api = EngineApi.Open(configPath);
        if (api is null) return Bootstrap.ExitConfigInvalid;
        var answer = await api.SendAsync(HttpMethod.Get, "/api/status", ct, quiet: true);
        JsonElement status;
        string? stale = null;
        if (answer is { Ok: true }) status = answer.Body;
        else
        {
            try
            {
                status = JsonDocument.Parse(await File.ReadAllTextAsync(api.StatusFile, ct)).RootElement.Clone();
                var written = File.GetLastWriteTimeUtc(api.StatusFile);
                stale = (api.Address is null ? "Sentinel names no HTTP address (is engine.http enabled?)" : $"Sentinel is not answering at {api.Address}")
                    + $": this is {api.StatusFile}, written {Ago(DateTimeOffset.UtcNow - written)} ago.";
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: no running Sentinel answered and there is no readable {api.StatusFile}: start it with `sentinel run`");
                return 3;
            }
        }
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(status, new JsonSerializerOptions { WriteIndented = true }));
            return Exit(status);
        }
        if (stale is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(stale)}[/]");
        var healthy = status.GetProperty("healthy").GetBoolean();
        AnsiConsole.MarkupLine($"Sentinel {Markup.Escape(status.GetProperty("version").GetString() ?? "")}: "
            + (healthy ? "[green]running[/]" : $"[red]{Markup.Escape(status.GetProperty("health").GetString() ?? "unavailable")}[/]")
            + $", up since {status.GetProperty("startedAt").GetDateTimeOffset().ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("Rule").AddColumn("State").AddColumn(new TableColumn("Since").RightAligned())
            .AddColumn(new TableColumn("24h").RightAligned()).AddColumn(new TableColumn("7d").RightAligned()).AddColumn(new TableColumn("30d").RightAligned())
            .AddColumn("Last message");
        var now = status.GetProperty("now").GetDateTimeOffset();
        // Rules that supervise a service or remediate: PID, uptime, restarts, gave-up and the next attempt.
        var services = status.GetProperty("rules").EnumerateArray().Any(r => r.TryGetProperty("service", out var v) && v.ValueKind == JsonValueKind.Object);
        if (services) table.AddColumn("Service");
        foreach (var r in status.GetProperty("rules").EnumerateArray())
        {
            var state = r.GetProperty("status").GetString() ?? "";
            var color = state switch { "healthy" => "green", "failing" => "yellow", "down" => "red", _ => "grey" };
            var uptime = r.TryGetProperty("uptime", out var u) ? u : default;
            var cells = new List<string>
            {
                Markup.Escape(r.GetProperty("name").GetString() ?? ""), $"[{color}]{state}[/]",
                Ago(now - r.GetProperty("since").GetDateTimeOffset()),
                Pct(uptime, "day"), Pct(uptime, "week"), Pct(uptime, "month"),
                Markup.Escape(r.TryGetProperty("lastCheck", out var c) && c.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "not checked yet"),
            };
            if (services) cells.Add(ServiceCell(r));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        if (status.TryGetProperty("notifications", out var n) && n.TryGetProperty("openIncidents", out var open) && open.GetArrayLength() > 0)
            foreach (var i in open.EnumerateArray())
                AnsiConsole.MarkupLine($"[red]incident #{i.GetProperty("id").GetInt64()}[/] {Markup.Escape(i.GetProperty("rule").GetString() ?? "")} since "
                    + $"{Ago(now - i.GetProperty("openedAt").GetDateTimeOffset())}{(i.TryGetProperty("ackedAt", out _) ? " (acknowledged)" : "")}");
        if (!status.GetProperty("config").GetProperty("valid").GetBoolean())
            foreach (var e in status.GetProperty("config").GetProperty("errors").EnumerateArray())
                AnsiConsole.MarkupLine($"[yellow]config change rejected:[/] {Markup.Escape(e.GetString() ?? "")}");
        return Exit(status);
    }

    private static string ServiceCell(JsonElement rule)
    {
        if (!rule.TryGetProperty("service", out var service) || service.ValueKind != JsonValueKind.Object) return "";
        var text = Markup.Escape(service.GetProperty("summary").GetString() ?? "");
        return service.GetProperty("state").GetString() switch { "gaveUp" => $"[red]{text}[/]", "restarting" or "stopped" => $"[yellow]{text}[/]", _ => text };
    }

    // 0: every rule up (or paused/pending); 1: a rule is down or the engine unhealthy.
    private static int Exit(JsonElement status)
        => status.GetProperty("healthy").GetBoolean() && status.GetProperty("rules").EnumerateArray().All(r => r.GetProperty("status").GetString() != "down") ? 0 : 1;

    private static string Pct(JsonElement uptime, string key)
        => uptime.ValueKind == JsonValueKind.Object && uptime.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number
            ? Percent(v.GetDouble())
            : "–";

    /// <summary>Rounded down to 0.01%, so an outage never shows as 100%.</summary>
    public static string Percent(double share) => (Math.Floor(share * 10000) / 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";

    public static string Ago(TimeSpan t) => Duration.FormatCoarse(t);
}
