// The demo service that config/sentinel.yaml watches. It flaps on its own (sick for part of every cycle),
// so a newcomer sees a rule go down and come back within a minute; it can also be told to crash or hang.
using System.Globalization;

var port = Arg("--port", Environment.GetEnvironmentVariable("DEMO_PORT") ?? "5180");
var logPath = Arg("--log", Path.Combine("logs", "demo.log"));
var cycle = TimeSpan.FromSeconds(double.Parse(Arg("--cycle", "60"), CultureInfo.InvariantCulture));
var sickAfter = TimeSpan.FromSeconds(double.Parse(Arg("--sick-after", "20"), CultureInfo.InvariantCulture));
var sickFor = TimeSpan.FromSeconds(double.Parse(Arg("--sick-for", "20"), CultureInfo.InvariantCulture));
if (args.Contains("--help"))
{
    Console.WriteLine("sentinel-demo [--port 5180] [--log logs/demo.log] [--cycle 60] [--sick-after 20] [--sick-for 20]");
    Console.WriteLine("  sick from second <sick-after> to <sick-after + sick-for> of every <cycle> seconds; --sick-for 0: never sick on its own");
    Console.WriteLine("GET /health, GET / ; POST /crash, /hang, /sick, /heal");
    return 0;
}

Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)) { AutoFlush = true };
var started = DateTimeOffset.UtcNow;
var forcedSick = false;
var hang = new TaskCompletionSource();
hang.SetResult();
var gate = new object();
void Log(string level, string message)
{
    lock (gate) log.WriteLine($"{DateTimeOffset.UtcNow:O} {level} {message}");
}
bool Sick()
{
    var phase = TimeSpan.FromTicks((DateTimeOffset.UtcNow - started).Ticks % cycle.Ticks);
    return forcedSick || (phase >= sickAfter && phase < sickAfter + sickFor);
}

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
var app = builder.Build();

app.MapGet("/", () => Results.Text($$"""
    sentinel-demo on port {{port}}, logging to {{logPath}}
      GET  /health   200 {"status":"ok"} or 503 {"status":"sick"} (sick from {{sickAfter.TotalSeconds}}s for {{sickFor.TotalSeconds}}s of every {{cycle.TotalSeconds}}s)
      POST /sick     report sick until /heal        POST /heal   back to normal
      POST /hang     /health stops answering        POST /crash  exit with status 3
    """));
app.MapGet("/health", async (CancellationToken ct) =>
{
    await hang.Task.WaitAsync(ct);
    var sick = Sick();
    if (sick) Log("ERROR", "health check failing: the demo is sick");
    return Results.Json(new { status = sick ? "sick" : "ok", uptime = (DateTimeOffset.UtcNow - started).TotalSeconds }, statusCode: sick ? 503 : 200);
});
app.MapPost("/sick", () => { forcedSick = true; Log("WARN", "told to be sick"); return "sick\n"; });
app.MapPost("/heal", () => { forcedSick = false; hang.TrySetResult(); Log("INFO", "healed"); return "healed\n"; });
app.MapPost("/hang", () => { if (hang.Task.IsCompleted) hang = new TaskCompletionSource(); Log("WARN", "told to hang"); return "hanging\n"; });
app.MapPost("/crash", () => { Log("FATAL", "told to crash"); _ = Task.Run(async () => { await Task.Delay(100); Environment.Exit(3); }); return "crashing\n"; });

var ticker = Task.Run(async () =>
{
    var n = 0;
    using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
    while (await timer.WaitForNextTickAsync(app.Lifetime.ApplicationStopping)) Log("INFO", $"heartbeat {++n}");
});
Log("INFO", $"sentinel-demo started on 127.0.0.1:{port}");
Console.WriteLine($"sentinel-demo listening on http://127.0.0.1:{port} (log: {logPath})");
await app.RunAsync();
return 0;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
