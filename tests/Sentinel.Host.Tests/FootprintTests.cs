namespace Sentinel.Host.Tests;

/// <summary>What a running Sentinel maps into memory: only what its configuration uses.</summary>
public sealed class FootprintTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-footprint-tests", Guid.NewGuid().ToString("N")[..12]);

    public FootprintTests() => Directory.CreateDirectory(_dir);

    // Each was mapped into every Sentinel before (about 10 MiB of its idle RSS, docs/performance.md): the web host by
    // a method that named it beside the one without it, Npgsql by an error test, XML and HTTP/3 by the plugin loader
    // walking every assembly the plugin contract references.
    [Fact]
    public async Task ASentinelOnSqliteWithoutItsHttpServer_RunsAPluginsRule_WithoutMappingTheWebHostNpgsqlXmlOrHttp3()
    {
        var config = SentinelProcess.WriteConfig(_dir, """
            rules:
              - name: shell
                every: 200ms
                probe: { type: nagios, with: { command: [/bin/true] } }
            """, http: "{ enabled: false }");
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        // Its plugins are loaded and a plugin's probe has run: what a steady state maps is mapped by now.
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule shell: Pending -> Healthy"), context: sentinel.Output);
        var mapped = File.ReadAllLines($"/proc/{sentinel.Id}/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(p => p.Length > 5)
            .Select(p => Path.GetFileName(p[5])).ToHashSet(StringComparer.Ordinal);
        mapped.Should().Contain(["Sentinel.Engine.dll", "Microsoft.Data.Sqlite.dll"], "the engine and its SQLite store run (the map is read right)");
        mapped.Should().NotContain(["Microsoft.AspNetCore.Server.Kestrel.Core.dll", "Microsoft.AspNetCore.dll", "Npgsql.dll", "System.Private.Xml.dll", "System.Net.Quic.dll"]);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
