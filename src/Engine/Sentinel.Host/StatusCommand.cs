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
    public static async Task<int> ExecuteAsync(string configPath, string? rule, bool json, CancellationToken ct)
    {
        Bootstrap.SizeConsole();
        if (rule is not null) return await RuleAsync(configPath, rule, json, ct);
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
        // Cluster mode: the whole cluster's rules, with the node that runs each.
        var cluster = status.TryGetProperty("cluster", out var cl) && cl.ValueKind == JsonValueKind.Object ? cl : default;
        var table = new Table().Border(TableBorder.Rounded).AddColumn("Rule");
        if (cluster.ValueKind == JsonValueKind.Object) table.AddColumn("Node");
        table.AddColumn("State").AddColumn(new TableColumn("Since").RightAligned())
            .AddColumn(new TableColumn("24h").RightAligned()).AddColumn(new TableColumn("7d").RightAligned()).AddColumn(new TableColumn("30d").RightAligned())
            .AddColumn("Last message");
        var now = status.GetProperty("now").GetDateTimeOffset();
        // Rules that supervise a service or remediate: PID, uptime, restarts, gave-up and the next attempt.
        var services = status.GetProperty("rules").EnumerateArray().Any(r => r.TryGetProperty("service", out var v) && v.ValueKind == JsonValueKind.Object);
        if (services) table.AddColumn("Service");
        foreach (var r in status.GetProperty("rules").EnumerateArray())
        {
            var state = r.GetProperty("status").GetString() ?? "";
            var color = Color(state);
            var uptime = r.TryGetProperty("uptime", out var u) ? u : default;
            var cells = new List<string> { Markup.Escape(r.GetProperty("name").GetString() ?? "") };
            if (cluster.ValueKind == JsonValueKind.Object) cells.Add(Markup.Escape(Text(r, "node") ?? ""));
            cells.AddRange(
            [
                $"[{color}]{state}[/]",
                Ago(now - r.GetProperty("since").GetDateTimeOffset()),
                Pct(uptime, "day"), Pct(uptime, "week"), Pct(uptime, "month"),
                Markup.Escape(Text(r, "waiting") ?? Text(r, "unknown")
                    ?? (r.TryGetProperty("lastCheck", out var c) && c.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "not checked yet")),
            ]);
            if (services) cells.Add(ServiceCell(r));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        if (cluster.ValueKind == JsonValueKind.Object) WriteMembers(cluster);
        if (status.TryGetProperty("notifications", out var n) && n.TryGetProperty("openIncidents", out var open) && open.GetArrayLength() > 0)
            foreach (var i in open.EnumerateArray())
                AnsiConsole.MarkupLine($"[red]incident #{i.GetProperty("id").GetInt64()}[/] {Markup.Escape(i.GetProperty("rule").GetString() ?? "")} since "
                    + $"{Ago(now - i.GetProperty("openedAt").GetDateTimeOffset())}{(i.TryGetProperty("ackedAt", out _) ? " (acknowledged)" : "")}");
        if (!status.GetProperty("config").GetProperty("valid").GetBoolean())
            foreach (var e in status.GetProperty("config").GetProperty("errors").EnumerateArray())
                AnsiConsole.MarkupLine($"[yellow]config change rejected:[/] {Markup.Escape(e.GetString() ?? "")}");
        return Exit(status);
    }

    private static string? Text(JsonElement e, string property) => e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    // The cluster's nodes: which are up, their last check-in, how many rules each runs; then what looks wrong.
    private static void WriteMembers(JsonElement cluster)
    {
        var me = Text(cluster, "node");
        var members = new Table().Border(TableBorder.Rounded).AddColumn("Node").AddColumn("State").AddColumn(new TableColumn("Last check-in").RightAligned())
            .AddColumn(new TableColumn("Rules").RightAligned()).AddColumn("Version").AddColumn(new TableColumn("Up since").RightAligned());
        foreach (var m in cluster.GetProperty("members").EnumerateArray())
        {
            var state = Text(m, "state") ?? "";
            members.AddRow(Markup.Escape(Text(m, "node") + (m.GetProperty("this").GetBoolean() ? " (this node)" : "")),
                $"[{state switch { "up" => "green", "down" => "red", _ => "grey" }}]{state}[/]",
                Ago(TimeSpan.FromSeconds(m.GetProperty("ageSeconds").GetDouble())) + " ago", m.GetProperty("rules").GetInt32().ToString(CultureInfo.InvariantCulture),
                Markup.Escape(Text(m, "version") ?? ""), m.GetProperty("startedAt").GetDateTimeOffset().ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture));
        }
        AnsiConsole.MarkupLine($"Cluster of {cluster.GetProperty("members").GetArrayLength()} nodes, seen from {Markup.Escape(me ?? "")}:");
        AnsiConsole.Write(members);
        if (Text(cluster, "problem") is { } problem) AnsiConsole.MarkupLine($"[red]{Markup.Escape(problem)}[/]");
        foreach (var w in cluster.GetProperty("warnings").EnumerateArray()) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(w.GetString() ?? "")}[/]");
    }

    private static string Color(string state) => state switch { "healthy" => "green", "failing" or "waiting" => "yellow", "down" => "red", _ => "grey" };

    // `sentinel status RULE`: the rule's whole story (state, service, last checks, incident, channels), from the API;
    // from status.json when Sentinel does not answer (without the checks only the API keeps).
    private static async Task<int> RuleAsync(string configPath, string rule, bool json, CancellationToken ct)
    {
        using var api = EngineApi.Open(configPath);
        if (api is null) return Bootstrap.ExitConfigInvalid;
        var path = "/api/rules/" + Uri.EscapeDataString(rule);
        var answer = await api.SendAsync(HttpMethod.Get, path, ct, quiet: true);
        JsonElement view, definition = default, checks = default, incident = default;
        var now = DateTimeOffset.UtcNow;
        string? stale = null;
        if (answer is { Ok: true })
        {
            view = answer.Body.GetProperty("state");
            definition = answer.Body.TryGetProperty("definition", out var def) ? def : default;
            if (await api.SendAsync(HttpMethod.Get, path + "/history?since=30d&limit=5", ct, quiet: true) is { Ok: true } h && h.Body.TryGetProperty("checks", out var c)) checks = c;
            if (await api.SendAsync(HttpMethod.Get, "/api/status", ct, quiet: true) is { Ok: true } st)
                incident = Incident(st.Body, rule);
        }
        else if (answer is { Status: System.Net.HttpStatusCode.NotFound })
        {
            Console.Error.WriteLine("error: " + (answer.Body.TryGetProperty("error", out var e) ? e.GetString() : $"there is no rule '{rule}'"));
            return Bootstrap.ExitConfigInvalid;
        }
        else
        {
            JsonElement status;
            try { status = JsonDocument.Parse(await File.ReadAllTextAsync(api.StatusFile, ct)).RootElement.Clone(); }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: no running Sentinel answered and there is no readable {api.StatusFile}: start it with `sentinel run`");
                return 3;
            }
            var found = status.GetProperty("rules").EnumerateArray().Where(r => r.GetProperty("name").GetString() == rule).ToList();
            if (found.Count == 0)
            {
                Console.Error.WriteLine($"error: there is no rule '{rule}' in {api.StatusFile}");
                return Bootstrap.ExitConfigInvalid;
            }
            view = found[0];
            incident = Incident(status, rule);
            now = status.GetProperty("now").GetDateTimeOffset();
            stale = $"Sentinel is not answering: this is {api.StatusFile}, written {Ago(DateTimeOffset.UtcNow - File.GetLastWriteTimeUtc(api.StatusFile))} ago.";
        }
        var state = view.GetProperty("status").GetString() ?? "";
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { rule = view, definition = Or(definition), lastChecks = Or(checks), incident = Or(incident) }, new JsonSerializerOptions { WriteIndented = true }));
            return state == "down" ? 1 : 0;
        }
        if (stale is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(stale)}[/]");
        var color = Color(state);
        var since = view.GetProperty("since").GetDateTimeOffset();
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(rule)}[/]: [{color}]{state}[/] since {since.ToLocalTime():yyyy-MM-dd HH:mm:ss} ({Ago(now - since)})");
        var grid = new Grid().AddColumn(new GridColumn().PadRight(2)).AddColumn();
        void Row(string key, string value) => grid.AddRow($"[grey]{key}[/]", value);
        if (view.TryGetProperty("waiting", out var waiting) && waiting.ValueKind == JsonValueKind.String)
            Row("not checked", $"[yellow]{Markup.Escape(waiting.GetString()!)}[/]: it starts when the plugin is dropped into a plugins folder (`sentinel plugins` lists what is loaded)");
        if (definition.ValueKind == JsonValueKind.Object)
            Row("probe", Markup.Escape($"{definition.GetProperty("probe").GetProperty("type").GetString()}, {definition.GetProperty("schedule").GetString()}; "
                + $"down after {definition.GetProperty("failureThreshold").GetInt32()} failures, up after {definition.GetProperty("successThreshold").GetInt32()} successes; "
                + $"defined at {definition.GetProperty("definedAt").GetString()}"));
        if (view.TryGetProperty("lastCheck", out var last) && last.ValueKind == JsonValueKind.Object)
            Row("last check", Markup.Escape($"{last.GetProperty("status").GetString()} {Ago(now - last.GetProperty("at").GetDateTimeOffset())} ago: "
                + (last.TryGetProperty("description", out var d) ? d.GetString() : "")));
        if (view.TryGetProperty("service", out _)) Row("service", ServiceCell(view));
        Row("checks", $"{view.GetProperty("checks").GetInt64()} ({view.GetProperty("failures").GetInt64()} failed)");
        if (view.TryGetProperty("uptime", out var u) && u.ValueKind == JsonValueKind.Object)
            Row("uptime", $"24h {Pct(u, "day")} · 7d {Pct(u, "week")} · 30d {Pct(u, "month")}");
        if (incident.ValueKind == JsonValueKind.Object)
        {
            var told = incident.GetProperty("notified").EnumerateArray().Select(c => c.GetString()).ToList();
            Row("incident", $"[red]#{incident.GetProperty("id").GetInt64()}[/] open since {Ago(now - incident.GetProperty("openedAt").GetDateTimeOffset())}"
                + (incident.TryGetProperty("ackedAt", out _) ? " (acknowledged)" : "") + Markup.Escape(told.Count > 0 ? "; told: " + string.Join(", ", told) : "; not told yet"));
        }
        else Row("incident", "none open");
        if (definition.ValueKind == JsonValueKind.Object)
        {
            var notify = definition.GetProperty("notify").EnumerateArray().Select(n => n.GetString()).ToList();
            Row("notify", Markup.Escape(notify.Count > 0 ? string.Join(", ", notify) : "no channel"));
            var deps = definition.GetProperty("dependsOn").EnumerateArray().Select(n => n.GetString()).ToList();
            if (deps.Count > 0) Row("depends on", Markup.Escape(string.Join(", ", deps)));
        }
        AnsiConsole.Write(grid);
        if (checks.ValueKind == JsonValueKind.Array && checks.GetArrayLength() > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumn("Last checks").AddColumn("Result").AddColumn(new TableColumn("Time").RightAligned()).AddColumn("Details");
            foreach (var c in checks.EnumerateArray().Reverse())
                table.AddRow(c.GetProperty("at").GetDateTimeOffset().ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture), Markup.Escape(c.GetProperty("status").GetString() ?? ""),
                    c.GetProperty("duration").GetString() ?? "", Markup.Escape(c.TryGetProperty("description", out var cd) ? cd.GetString() ?? "" : ""));
            AnsiConsole.Write(table);
        }
        return state == "down" ? 1 : 0;
    }

    private static object? Or(JsonElement e) => e.ValueKind == JsonValueKind.Undefined ? null : e;

    private static JsonElement Incident(JsonElement status, string rule)
        => status.TryGetProperty("notifications", out var n) && n.TryGetProperty("openIncidents", out var open)
            ? open.EnumerateArray().FirstOrDefault(i => i.GetProperty("rule").GetString() == rule)
            : default;

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
