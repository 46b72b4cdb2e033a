namespace Sentinel.Bench;

/// <summary>The engine section every load harness uses: no HTTP server, no file watching, console-free logs.</summary>
internal static class BenchConfig
{
    public static string Engine(params string[] extra)
        => "engine: { http: { enabled: false }, state: state, log: { directory: \"\" }, watch-config: false, watch-plugins: false"
            + string.Concat(extra.Select(e => ", " + e)) + " }\n";
}

/// <summary>A clock the harness moves by hand (history days written in seconds).</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now = start;
    public override DateTimeOffset GetUtcNow() => Now;
}
