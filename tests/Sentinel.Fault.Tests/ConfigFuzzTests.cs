using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Host.Tests;
using Xunit.Abstractions;

namespace Sentinel.Fault.Tests;

/// <summary>
/// Mutations of every shipped and documented config (corpus/, checked in), with a fixed seed, loaded in-process the
/// way `validate`, `run` and a hot reload load them, the real plugins included: no exception escapes, no case takes
/// over 5 s (it bounds a hang or a blow-up, such as an alias bomb, not a speed: a loaded CI machine saw 1 s), and every error names file:line:col. A valid mutant's probes and actions are built too, as `run` does.
/// </summary>
public sealed class ConfigFuzzTests(ITestOutputHelper output) : IDisposable
{
    // Fixed, so a failure can be run again; SENTINEL_FUZZ_SEED and SENTINEL_FUZZ_CASES explore further (docs/reliability.md).
    private static readonly int Cases = int.TryParse(Environment.GetEnvironmentVariable("SENTINEL_FUZZ_CASES"), out var n) ? n : 8_000;
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("SENTINEL_FUZZ_SEED"), out var s) ? s : 1612;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-fuzz", Guid.NewGuid().ToString("N")[..12]);

    public static string Corpus => Path.Combine(SentinelProcess.RepoRoot, "tests", "Sentinel.Fault.Tests", "corpus");

    private static readonly string[] Values =
    [
        "~", "null", "[]", "{}", "\"\"", "''", "0", "-1", "99999999999999999999999", "1e309", "-0.0", "NaN", ".inf", "true", "no",
        "0s", "-5s", "1h", "99999d", "10 GiB", "1.5.3", "\"${UNSET_VARIABLE}\"", "${}", "\"${A:-default}\"", "*missing", "&anchor", "!!binary AAAA",
        "!tag x", "[~, ~]", "[down, foo]", "{ a: }", "\"\\u0000\"", "'\\x'", "%%%", "|", ">-", "\"(\"", "\"[a-\"", "\"/**/*.yaml\"", "\"../../../../etc/passwd\"",
        "\"/proc/self/root\"", "\"http://\"", "\"ftp://x\"", "\"127.0.0.1:99999\"", "\"0.0.0.0:0\"", "@", "`", "\"\t\"", "é", "\"😀\"", "- x", "? x",
        new string('a', 10_000), "[" + string.Join(",", Enumerable.Repeat("1", 2000)) + "]",
    ];

    [Fact]
    public void MutatedConfigs_NeverThrow_NeverHang_AndEveryErrorHasFileLineColumn()
    {
        var seeds = Directory.GetFiles(Corpus, "*.yaml").Order(StringComparer.Ordinal).Select(f => (Name: Path.GetFileName(f), Text: File.ReadAllText(f))).ToList();
        seeds.Should().HaveCountGreaterThan(30, "the shipped config, its includes and every YAML block of the docs");
        Directory.CreateDirectory(_dir);
        // What the shipped config includes, beside every mutant.
        CopyDirectory(Path.Combine(SentinelProcess.RepoRoot, "config", "rules.d"), Path.Combine(_dir, "rules.d"));
        using var catalog = new PluginCatalog(Path.Combine(SentinelProcess.RepoRoot, "plugins"), NullLogger.Instance, builtIn: [new Sentinel.Engine.BuiltIn.EngineProbesPlugin()]);
        catalog.LoadAll();
        catalog.Plugins.Should().NotBeEmpty();
        var probes = new PluginActivator(NullLoggerFactory.Instance, TimeProvider.System);
        var loader = new ConfigLoader(name => name == "SET_VARIABLE" ? "value" : null);
        var random = new Random(Seed);
        var path = Path.Combine(_dir, "sentinel.yaml");
        var (valid, invalid, slowest, slowestCase) = (0, 0, TimeSpan.Zero, "");
        var failures = new List<string>();
        var total = Stopwatch.StartNew();

        for (var i = 0; i < Cases && failures.Count < 10; i++)
        {
            var seed = seeds[random.Next(seeds.Count)];
            var (bytes, how) = Mutate(seed.Text, random);
            File.WriteAllBytes(path, bytes);
            var label = $"case {i} ({seed.Name}: {how})";
            var watch = Stopwatch.StartNew();
            try
            {
                var result = loader.Load(path, catalog);
                if (result.IsValid)
                {
                    valid++;
                    foreach (var rule in result.Config!.Rules) Build(probes, rule);
                }
                else
                {
                    invalid++;
                    foreach (var e in result.Errors)
                        if (e.Location.Line < 1 || e.Location.Column < 1 || e.Location.File.Length == 0)
                            failures.Add($"{label}: an error without file:line:col: {e}");
                }
            }
            catch (Exception e) { failures.Add($"{label}: {e.GetType().Name} escaped: {e.Message}\n{e.StackTrace}"); }
            watch.Stop();
            if (watch.Elapsed > slowest) (slowest, slowestCase) = (watch.Elapsed, label);
            if (watch.Elapsed > TimeSpan.FromSeconds(5)) failures.Add($"{label}: took {watch.Elapsed.TotalSeconds:0.0}s");
        }
        total.Stop();
        output.WriteLine($"seed {Seed}: {Cases} cases in {total.Elapsed.TotalSeconds:0.0}s: {valid} valid, {invalid} invalid, slowest {slowest.TotalMilliseconds:0} ms ({slowestCase})");
        failures.Should().BeEmpty();
        valid.Should().BeGreaterThan(Cases / 50, "some mutants stay valid, so the path past the loader is exercised");
        // No bound on the total: how long 8,000 loads take is the machine's load, not the loader's behaviour (a loaded
        // CI machine took 64 s). A hang is what the 5 s bound on each case catches.
    }

    // As the engine builds a rule: a ConfigException (with locations) is a refusal; anything else is a crash.
    private static void Build(PluginActivator factory, RuleDefinition rule)
    {
        try
        {
            if (rule.Supervise is null && rule.Probe.ImplementationType != typeof(SupervisedProbe)) Dispose(factory.Create(rule));
            foreach (var a in rule.Remediate.Concat(rule.Run)) Dispose(factory.CreateAction(rule, a));
        }
        catch (ConfigException e) when (e.Errors.All(x => x.Location.Line > 0)) { }
    }

    private static void Dispose(object o)
    {
        if (o is IAsyncDisposable ad) ad.DisposeAsync().AsTask().GetAwaiter().GetResult();
        else if (o is IDisposable d) d.Dispose();
    }

    private static (byte[] Bytes, string How) Mutate(string text, Random random)
    {
        var lines = text.Split('\n').ToList();
        var count = random.Next(1, 4);
        var how = new List<string>();
        for (var m = 0; m < count && lines.Count > 0; m++)
        {
            var at = random.Next(lines.Count);
            switch (random.Next(12))
            {
                case 0: how.Add($"delete line {at + 1}"); lines.RemoveAt(at); break;
                case 1: how.Add($"duplicate line {at + 1}"); lines.Insert(at, lines[at]); break;
                case 2:
                    var other = random.Next(lines.Count);
                    how.Add($"swap lines {at + 1} and {other + 1}");
                    (lines[at], lines[other]) = (lines[other], lines[at]);
                    break;
                case 3: how.Add($"indent line {at + 1}"); lines[at] = new string(' ', random.Next(1, 5)) + lines[at]; break;
                case 4: how.Add($"dedent line {at + 1}"); lines[at] = lines[at].TrimStart(); break;
                case 5 or 6 or 7:
                    var colon = lines[at].IndexOf(": ", StringComparison.Ordinal);
                    var value = Values[random.Next(Values.Length)];
                    how.Add($"value of line {at + 1} := {(value.Length > 20 ? value[..20] + "…" : value)}");
                    lines[at] = colon >= 0 ? lines[at][..(colon + 2)] + value : lines[at] + " " + value;
                    break;
                case 8:
                    var key = lines[at].IndexOf(':');
                    if (key > 0) { how.Add($"rename key on line {at + 1}"); lines[at] = lines[at][..key] + "x" + lines[at][key..]; }
                    break;
                case 9: how.Add($"tab in line {at + 1}"); lines[at] = "\t" + lines[at]; break;
                case 10:
                    // Defined under a key of its own and used as a value: a walker that expands aliases never ends.
                    var use = lines[at].IndexOf(": ", StringComparison.Ordinal);
                    if (use >= 0) lines[at] = lines[at][..(use + 2)] + "*a8";
                    lines.InsertRange(0, AliasBomb());
                    how.Add($"alias bomb used on line {at + 1}");
                    break;
                case 11: how.Add($"cut at line {at + 1}"); lines.RemoveRange(at, lines.Count - at); break;
            }
        }
        var bytes = Encoding.UTF8.GetBytes(string.Join('\n', lines));
        if (random.Next(20) == 0)
        {
            // Not UTF-8: a few bytes that no UTF-8 text has.
            var at = random.Next(bytes.Length + 1);
            bytes = [.. bytes[..at], 0xFF, 0xFE, 0xC0, .. bytes[at..]];
            how.Add($"invalid UTF-8 at byte {at}");
        }
        return (bytes, string.Join(", ", how));
    }

    // "Billion laughs": nine levels of ten aliases each, 10^9 leaves if expanded.
    private static IEnumerable<string> AliasBomb()
    {
        yield return "x-bomb:";
        yield return "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]";
        for (var i = 1; i < 9; i++)
            yield return $"  a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]";
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
