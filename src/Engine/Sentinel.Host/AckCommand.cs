using System.Net.Http.Json;
using System.Text.Json;
using Sentinel.Engine.Configuration;

namespace Sentinel.Host;

/// <summary>`sentinel ack INCIDENT`: acknowledges an open incident through the running Sentinel's HTTP API.</summary>
internal static class AckCommand
{
    public static async Task<int> ExecuteAsync(string configPath, long incident, CancellationToken cancellationToken)
    {
        var (settings, errors) = new ConfigLoader().LoadEngine(configPath);
        if (settings is null)
        {
            Bootstrap.PrintErrors(errors);
            return Bootstrap.ExitConfigInvalid;
        }
        var statusFile = Path.Combine(settings.StateDirectory, "status.json");
        string? address = null;
        try
        {
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(statusFile, cancellationToken));
            if (doc.RootElement.TryGetProperty("http", out var h) && h.ValueKind == JsonValueKind.String) address = h.GetString();
        }
        catch (Exception e) when (e is IOException or JsonException) { }
        if (address is null)
        {
            Console.Error.WriteLine($"error: no running Sentinel with an HTTP server found ({statusFile} names none): start `sentinel run` with engine.http enabled");
            return 1;
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var response = await http.PostAsync($"{address}/api/incidents/{incident}/ack", null, cancellationToken);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                Console.WriteLine($"incident #{incident} acknowledged: its escalations and reminders stop");
                return 0;
            }
            Console.Error.WriteLine($"error: {(body.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
            return 1;
        }
        catch (HttpRequestException ex)
        {
            Console.Error.WriteLine($"error: Sentinel at {address} did not answer ({ex.Message}): is `sentinel run` running?");
            return 1;
        }
    }
}
