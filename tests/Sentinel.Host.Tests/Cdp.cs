using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sentinel.Host.Tests;

/// <summary>
/// Debian's headless Chromium driven over the DevTools protocol (a WebSocket, no other tool): one page, its console
/// errors, uncaught exceptions and network requests recorded, JavaScript evaluated, screenshots taken.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonNode>> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private Task? _reader;
    private int _nextId;

    public ConcurrentQueue<string> Errors { get; } = new();
    public ConcurrentQueue<string> Requests { get; } = new();

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessChromium> StartAsync()
    {
        if (!File.Exists(Executable)) throw new InvalidOperationException($"{Executable} is missing: install Debian's chromium (.ci/run does)");
        var profile = Path.Combine(Path.GetTempPath(), "sentinel-chromium-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo(Executable) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--remote-debugging-address=127.0.0.1",
                     "--remote-debugging-port=0", $"--user-data-dir={profile}", "--window-size=1280,900", "about:blank" })
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var browser = new HeadlessChromium(process, profile);
        try
        {
            // Chromium writes the port it took (port 0 = a free one) to DevToolsActivePort in its profile.
            var portFile = Path.Combine(profile, "DevToolsActivePort");
            var lines = await Eventually.Until(() => process.HasExited
                    ? throw new InvalidOperationException($"chromium exited with {process.ExitCode}")
                    : File.Exists(portFile) ? File.ReadAllLines(portFile) : [],
                l => l.Length >= 2, what: "chromium opening its DevTools port");
            using var http = new HttpClient();
            var target = JsonNode.Parse(await (await http.PutAsync($"http://127.0.0.1:{lines[0]}/json/new?about:blank", null)).Content.ReadAsStringAsync())!;
            await browser._socket.ConnectAsync(new Uri(target["webSocketDebuggerUrl"]!.GetValue<string>()), CancellationToken.None);
            browser._reader = Task.Run(browser.ReadAsync);
            foreach (var domain in new[] { "Runtime", "Log", "Page", "Network" }) await browser.SendAsync(domain + ".enable");
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    public async Task<JsonNode> SendAsync(string method, object? parameters = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var done = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = done;
        var message = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _send.WaitAsync();
        try { await _socket.SendAsync(message, WebSocketMessageType.Text, true, _stop.Token); }
        finally { _send.Release(); }
        var result = await done.Task.WaitAsync(TimeSpan.FromSeconds(30));
        if (result["error"] is { } error) throw new InvalidOperationException($"{method}: {error.ToJsonString()}");
        return result["result"]!;
    }

    /// <summary>Evaluates an expression in the page and returns its value (awaiting a promise).</summary>
    public async Task<JsonNode?> EvalAsync(string expression)
    {
        var r = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (r["exceptionDetails"] is { } ex) throw new InvalidOperationException($"{expression}: {ex.ToJsonString()}");
        return r["result"]?["value"];
    }

    public async Task ScreenshotAsync(string path)
    {
        var r = await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(r["data"]!.GetValue<string>()));
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[1 << 20];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                var node = JsonNode.Parse(Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length))!;
                message.SetLength(0);
                if (node["id"] is { } id && _pending.TryRemove(id.GetValue<int>(), out var done)) done.TrySetResult(node);
                else OnEvent(node["method"]?.GetValue<string>(), node["params"]);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
    }

    private void OnEvent(string? method, JsonNode? p)
    {
        if (p is null) return;
        string? Text(JsonNode? n) => n?.ToJsonString();
        if (method == "Runtime.consoleAPICalled" && (string?)p["type"] is "error" or "assert") Errors.Enqueue($"console.{p["type"]}: {Text(p["args"])}");
        else if (method == "Runtime.exceptionThrown") Errors.Enqueue("exception: " + Text(p["exceptionDetails"]));
        else if (method == "Log.entryAdded" && (string?)p["entry"]?["level"] == "error") Errors.Enqueue($"log: {p["entry"]?["text"]} {p["entry"]?["url"]}");
        else if (method == "Network.requestWillBeSent") Requests.Enqueue((string?)p["request"]?["url"] ?? "");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { _socket.Abort(); } catch (ObjectDisposedException) { }
        if (_reader is not null) await _reader;
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _socket.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { }
    }
}
