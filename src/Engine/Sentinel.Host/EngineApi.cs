using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Sentinel.Engine.Configuration;

namespace Sentinel.Host;

/// <summary>
/// The running Sentinel's HTTP API, as the CLI reaches it: the address from state/status.json, the token from
/// $SENTINEL_API_TOKEN, engine.http.token, or state/api-token (written by `sentinel run`, readable by its owner only).
/// </summary>
internal sealed class EngineApi : IDisposable
{
    public const string TokenEnvironment = "SENTINEL_API_TOKEN";
    public const string TokenFile = "api-token";
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };

    private EngineApi(EngineSettings settings, string? address)
    {
        Settings = settings;
        Address = address;
    }

    public EngineSettings Settings { get; }

    /// <summary>Where the running Sentinel said it listens; null when status.json names no HTTP server.</summary>
    public string? Address { get; }

    public string StatusFile => Path.Combine(Settings.StateDirectory, "status.json");

    /// <summary>Reads the engine section; prints the errors and returns null when the configuration is invalid.</summary>
    public static EngineApi? Open(string configPath)
    {
        if (Bootstrap.LoadEngine(new ConfigLoader(), configPath) is not { } settings) return null;
        string? address = null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(settings.StateDirectory, "status.json")));
            if (doc.RootElement.TryGetProperty("http", out var h) && h.ValueKind == JsonValueKind.String) address = h.GetString();
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { }
        return new EngineApi(settings, address);
    }

    /// <summary>The token the engine requires: explicit (environment, then config) or the one it generated.</summary>
    public static string? ExplicitToken(EngineSettings settings)
        => Environment.GetEnvironmentVariable(TokenEnvironment) is { Length: > 0 } env ? env : settings.HttpToken;

    /// <summary>For `sentinel run`: the explicit token, else the one in state/api-token (created once, mode 0600).</summary>
    public static string ResolveOrCreateToken(EngineSettings settings)
    {
        if (ExplicitToken(settings) is { } token) return token;
        var path = Path.Combine(settings.StateDirectory, TokenFile);
        try
        {
            if (File.ReadAllText(path).Trim() is { Length: >= 16 } existing) return existing;
        }
        catch (FileNotFoundException) { }
        catch (DirectoryNotFoundException) { }
        var created = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        WriteTokenFile(settings, created);
        return created;
    }

    /// <summary>
    /// For `sentinel run` in a cluster: the explicit token, else the cluster's (kept in its database: the first node's
    /// state/api-token), written to this node's state/api-token for the commands run here.
    /// </summary>
    public static async Task<string> ResolveClusterTokenAsync(EngineSettings settings, Func<string, CancellationToken, Task<string>> shared, CancellationToken cancellationToken)
    {
        if (ExplicitToken(settings) is { } token) return token;
        var local = ResolveOrCreateToken(settings);
        var cluster = await shared(local, cancellationToken);
        if (cluster != local) WriteTokenFile(settings, cluster);
        return cluster;
    }

    private static void WriteTokenFile(EngineSettings settings, string token)
    {
        Sentinel.Engine.State.PrivateFiles.CreateDirectory(settings.StateDirectory);
        var path = Path.Combine(settings.StateDirectory, TokenFile);
        var temp = path + ".tmp";
        File.WriteAllText(temp, token + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }

    private string? Token()
    {
        if (ExplicitToken(Settings) is { } token) return token;
        try { return File.ReadAllText(Path.Combine(Settings.StateDirectory, TokenFile)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public sealed record Answer(HttpStatusCode Status, JsonElement Body)
    {
        public bool Ok => (int)Status is >= 200 and < 300;
        public string Error => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("error", out var e) ? e.GetString() ?? "" : Status.ToString();
    }

    /// <summary>Calls the API; null (with the reason printed) when no Sentinel answers.</summary>
    public async Task<Answer?> SendAsync(HttpMethod method, string path, CancellationToken cancellationToken, bool quiet = false)
    {
        if (Address is null)
        {
            if (!quiet) Console.Error.WriteLine($"error: no running Sentinel with an HTTP server found ({StatusFile} names none): start `sentinel run` with engine.http enabled");
            return null;
        }
        using var request = new HttpRequestMessage(method, Address + path);
        if (method != HttpMethod.Get && Token() is { } token) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonElement body;
            try { body = JsonDocument.Parse(text.Length == 0 ? "null" : text).RootElement.Clone(); }
            catch (JsonException) { body = JsonSerializer.SerializeToElement(new { error = text.Trim() }); }
            return new Answer(response.StatusCode, body);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            if (!quiet) Console.Error.WriteLine($"error: Sentinel at {Address} did not answer ({ex.Message}): is `sentinel run` running?");
            return null;
        }
    }

    public void Dispose() => _http.Dispose();
}
