using System.Diagnostics;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Files;

/// <summary>file-valid, backup, restore and cleanup on real files in a temporary folder.</summary>
public sealed class StateGuardianTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sentinel-guardian-").FullName;
    private string State => Path.Combine(_dir, "sessions.json");
    private string Backups => Path.Combine(_dir, "backups");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("{\"a\": 1", "is not valid JSON: line 1, column 8")]
    [InlineData("\u0000\u0001garbage", "is not valid JSON: line 1, column 1")]
    [InlineData("", "is empty")]
    public async Task FileValid_ReportsTheParsersProblemWithLineAndColumn(string content, string expected)
    {
        File.WriteAllText(State, content);
        var result = await RealPlugins.Create("file-valid", $"{{ path: '{State}' }}").CheckAsync();
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().StartWith($"{State} {expected}");
        result.Data!["valid"].Should().Be(false);
    }

    [Fact]
    public async Task FileValid_YamlAnyMissingAndMaxAge()
    {
        File.WriteAllText(Path.Combine(_dir, "tasks.yaml"), "a: [1, 2\nb: 3\n");
        (await RealPlugins.Create("file-valid", $"{{ path: '{_dir}/tasks.yaml' }}").CheckAsync()).Description.Should().Contain("is not valid YAML: its structure is broken");
        File.WriteAllText(Path.Combine(_dir, "costs.yaml"), "a: 1\n  b: 2\n");
        (await RealPlugins.Create("file-valid", $"{{ path: '{_dir}/costs.yaml' }}").CheckAsync()).Description.Should().Contain("is not valid YAML: line 2, column");
        File.WriteAllText(State, "{\"ok\": true}");
        var good = await RealPlugins.Create("file-valid", $"{{ path: '{_dir}/*.json' }}").CheckAsync();
        good.Status.Should().Be(ProbeStatus.Healthy);
        ((ByteSize)good.Data!["size"]).Bytes.Should().Be(12);
        (await RealPlugins.Create("file-valid", $"{{ path: '{_dir}/nope.json' }}").CheckAsync()).Description.Should().EndWith("does not exist");
        File.SetLastWriteTimeUtc(State, DateTime.UtcNow.AddHours(-2));
        (await RealPlugins.Create("file-valid", $"{{ path: '{State}', max-age: 1h }}").CheckAsync()).Description.Should().Contain("was last written 2h");
    }

    [Fact]
    public async Task Backup_CopiesOnlyValidChangedFiles_AndKeepsExactlyKeep()
    {
        var backup = RealPlugins.CreateAction("backup", $"{{ path: '{State}', backup-dir: '{Backups}', keep: 3 }}");
        for (var i = 0; i < 5; i++)
        {
            File.WriteAllText(State, $"{{\"version\": {i}}}");
            (await backup.RunAsync()).Error.Should().BeNull();
            await Task.Delay(2); // backups are named by the millisecond
        }
        var files = Directory.GetFiles(Backups).Order().ToList();
        files.Should().HaveCount(3, "keep: 3");
        File.ReadAllText(files[^1]).Should().Be("{\"version\": 4}");

        var (unchanged, _) = await backup.RunAsync();
        unchanged.Should().ContainSingle().Which.Should().StartWith("unchanged since sessions.json.");
        Directory.GetFiles(Backups).Should().HaveCount(3, "an unchanged file is not copied again");

        File.WriteAllText(State, "{\"version\": 5, truncat");
        var (output, error) = await backup.RunAsync();
        error.Should().BeOfType<ActionFailedException>().Which.Message.Should().Contain("not backed up (invalid, the good backups are kept)");
        Directory.GetFiles(Backups).Order().Should().Equal(files, "a corrupt file never pushes a good backup out");
        output.Should().ContainSingle().Which.Should().Contain("is not valid JSON");
    }

    [Fact]
    public async Task Restore_TakesTheNewestValidBackup_AndKeepsTheCorruptFileAside()
    {
        Directory.CreateDirectory(Backups);
        File.WriteAllText(Path.Combine(Backups, "sessions.json.20261122T100000000Z.bak"), "{\"good\": \"older\"}");
        File.WriteAllText(Path.Combine(Backups, "sessions.json.20261122T110000000Z.bak"), "{\"good\": \"newest\"}");
        File.WriteAllText(Path.Combine(Backups, "sessions.json.20261122T120000000Z.bak"), "{\"bad\": ");
        File.WriteAllText(State, "garbage");
        var (output, error) = await RealPlugins.CreateAction("restore", $"{{ path: '{State}', backup-dir: '{Backups}' }}").RunAsync();
        error.Should().BeNull();
        File.ReadAllText(State).Should().Be("{\"good\": \"newest\"}");
        Directory.GetFiles(_dir, "sessions.json.corrupt-*").Should().ContainSingle().Which.Should().Match(f => File.ReadAllText(f) == "garbage");
        output.Should().Contain(l => l.StartsWith("skipped sessions.json.20261122T120000000Z.bak: is not valid JSON"))
            .And.Contain("restored " + State + " from sessions.json.20261122T110000000Z.bak");

        File.Delete(State);
        foreach (var f in Directory.GetFiles(Backups)) File.Delete(f);
        var (_, none) = await RealPlugins.CreateAction("restore", $"{{ path: '{State}', backup-dir: '{Backups}' }}").RunAsync();
        none.Should().BeOfType<ActionFailedException>().Which.Message.Should().Be($"cannot restore {State}: there is no backup of it in {Backups}");
    }

    [Fact]
    public async Task Disk_AgreesWithDf()
    {
        var result = await RealPlugins.Create("disk", $"{{ path: '{_dir}', min-free-percent: 0 }}").CheckAsync();
        result.Status.Should().Be(ProbeStatus.Healthy);
        using var df = Process.Start(new ProcessStartInfo("df", ["-B1", "--output=avail,itotal,iavail", _dir]) { RedirectStandardOutput = true })!;
        var line = df.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var avail = long.Parse(line[0]);
        ((ByteSize)result.Data!["free"]).Bytes.Should().BeCloseTo(avail, 64L * 1024 * 1024, "df and the probe read the same statvfs (other programs write meanwhile)");
        if (long.Parse(line[1]) > 0)
            ((double)result.Data["inodes-free-percent"]).Should().BeApproximately(100.0 * long.Parse(line[2]) / long.Parse(line[1]), 1);
        var full = await RealPlugins.Create("disk", $"{{ path: '{_dir}', min-free-percent: 100 }}").CheckAsync();
        full.Status.Should().Be(ProbeStatus.Unhealthy);
        full.Description.Should().StartWith("only ").And.Contain("% free (min 100%)");
    }

    [Fact]
    public async Task Cleanup_NeverTouchesAnythingOutsideItsRoots_ThroughSymlinksOrDotDot()
    {
        var root = Directory.CreateDirectory(Path.Combine(_dir, "logs")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "precious")).FullName;
        var keepMe = Path.Combine(outside, "old.log");
        File.WriteAllText(keepMe, "precious");
        File.SetLastWriteTimeUtc(keepMe, DateTime.UtcNow.AddDays(-30));
        File.CreateSymbolicLink(Path.Combine(root, "link.log"), keepMe);
        Directory.CreateSymbolicLink(Path.Combine(root, "sub"), outside);
        for (var i = 0; i < 4; i++)
        {
            var f = Path.Combine(root, $"app.{i}.log");
            File.WriteAllText(f, new string('x', 1000 * (i + 1)));
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-10 + i));
        }
        File.WriteAllText(Path.Combine(root, "fresh.log"), "today");

        var dry = await RealPlugins.CreateAction("cleanup", $"{{ roots: ['{root}'], patterns: ['*.log'], recursive: true, max-age: 2d, dry-run: true }}").RunAsync();
        dry.Output.Should().HaveCount(4).And.OnlyContain(l => l.StartsWith("would delete " + root + "/app."));
        Directory.GetFiles(root, "app.*").Should().HaveCount(4, "a dry run deletes nothing");

        var (output, error) = await RealPlugins.CreateAction("cleanup", $"{{ roots: ['{root}'], patterns: ['*.log'], recursive: true, max-age: 2d, keep: 1 }}").RunAsync();
        error.Should().BeNull();
        Directory.GetFiles(root, "*.log").Select(Path.GetFileName).Should().BeEquivalentTo(["fresh.log", "link.log"], "the newest is kept; the symlink is never touched");
        File.ReadAllText(keepMe).Should().Be("precious", "nothing outside the root, not through a file symlink nor a folder symlink");
        output.Last().Should().StartWith("4 files");

        RealPlugins.Bind("cleanup", $"{{ roots: ['{root}'], patterns: ['../precious/*.log'], max-age: 1d }}", Sentinel.Engine.Model.PluginKind.Action).Errors
            .Should().Contain(e => e.Message.Contains("must be a file-name pattern (no '/' or '..')"));
        RealPlugins.Bind("cleanup", "{ roots: ['/'], patterns: ['*.log'], max-age: 1d }", Sentinel.Engine.Model.PluginKind.Action).Errors
            .Should().Contain(e => e.Message.Contains("root '/' is refused"));
        RealPlugins.Bind("cleanup", "{ roots: [logs], patterns: ['*.log'] }", Sentinel.Engine.Model.PluginKind.Action).Errors
            .Should().Contain(e => e.Message.Contains("must be an absolute path")).And.Contain(e => e.Message.Contains("say what is old"));
    }

    [Fact]
    public async Task Cleanup_Compresses_LargestFirst_UntilTheTargetIsMet()
    {
        var root = Directory.CreateDirectory(Path.Combine(_dir, "logs")).FullName;
        File.WriteAllText(Path.Combine(root, "big.log"), new string('a', 100_000));
        File.WriteAllText(Path.Combine(root, "small.log"), new string('b', 10_000));
        // Any target is met before the first file: nothing is touched.
        var (met, _) = await RealPlugins.CreateAction("cleanup", $"{{ roots: ['{root}'], patterns: ['*.log'], target-free-percent: 0 }}").RunAsync();
        met.Last().Should().StartWith("0 files");
        // An unreachable target: everything goes, largest first, compressed.
        var (output, _) = await RealPlugins.CreateAction("cleanup", $"{{ roots: ['{root}'], patterns: ['*.log'], target-free-percent: 100, mode: compress }}").RunAsync();
        output[0].Should().StartWith($"compressed {root}/big.log");
        Directory.GetFiles(root).Select(Path.GetFileName).Should().BeEquivalentTo(["big.log.gz", "small.log.gz"]);
    }

    [Fact]
    public async Task Disk_MeasuresGrowthOverItsWindow_WithDurableSamples()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var probe = RealPlugins.Create("disk", $"{{ path: '{_dir}', growth-window: 1h }}", time);
        var state = new MemoryProbeState();
        ProbeContext Context() => new() { RuleName = "disk", TimeProvider = time, Logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, Timeout = TimeSpan.FromSeconds(5), State = state };
        var first = await probe.CheckAsync(Context(), default);
        first.Data!.Should().NotContainKey("growth", "one sample is no rate");
        first.Data!["full-in"].Should().Be(TimeSpan.FromDays(3650));
        time.Advance(TimeSpan.FromMinutes(10));
        File.WriteAllBytes(Path.Combine(_dir, "grow.bin"), new byte[4 * 1024 * 1024]);
        var second = await probe.CheckAsync(Context(), default);
        second.Data!.Should().ContainKey("growth");
        state.Get("samples")!.Split(';').Should().HaveCount(2, "the samples live in the rule's durable state");
        // A fresh probe instance (after a restart) continues from the saved samples.
        var again = await RealPlugins.Create("disk", $"{{ path: '{_dir}', growth-window: 1h }}", time).CheckAsync(Context(), default);
        again.Data!.Should().ContainKey("growth");
    }
}
