using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Plugins;

/// <summary>The real loader on real plugin folders built from tests/TestPlugins and src/Plugins.</summary>
public sealed class PluginCatalogTests : IDisposable
{
    private readonly TempDir _dir = new();

    private PluginCatalog Load(params string[] testPlugins)
    {
        foreach (var p in testPlugins) _dir.DropPlugin(TestPaths.TestPlugin(p), p);
        var catalog = new PluginCatalog(Path.Combine(_dir.Path, "plugins"), NullLogger.Instance);
        catalog.LoadAll();
        return catalog;
    }

    private static async Task<ProbeResult> Check(PluginCatalog catalog, string probe)
    {
        catalog.TryGet(PluginKind.Probe, probe, out var reg).Should().BeTrue(probe);
        var instance = (IProbe)Activator.CreateInstance(reg.ImplementationType)!;
        return await instance.CheckAsync(new ProbeContext { RuleName = "r", TimeProvider = TimeProvider.System, Logger = NullLogger.Instance }, CancellationToken.None);
    }

    [Fact]
    public async Task TwoPlugins_EachRunWithTheirOwnVersionOfOnePackage()
    {
        using var catalog = Load("Sentinel.TestPlugins.JsonOld", "Sentinel.TestPlugins.JsonNew");

        catalog.Errors.Should().BeEmpty();
        (await Check(catalog, "json-old")).Data!["json-version"].Should().Be("12.0.0.0");
        (await Check(catalog, "json-new")).Data!["json-version"].Should().Be("13.0.0.0");
        (await Check(catalog, "json-old")).Data!["serialized"].Should().Be("{\"a\":1}");
    }

    // `cp -r bin/Release/net10.0 plugins/X` copies the folder, not its contents: the first time there is no X.dll
    // at the top, the second time the new build lands in X/net10.0/ while the old one runs.
    [Fact]
    public void ABuildFolderCopiedIntoThePluginFolder_IsNamed_WithTheCopyThatFixesIt()
    {
        const string name = "Sentinel.TestPlugins.JsonNew";
        var nested = Path.Combine(_dir.Path, "plugins", name, "net10.0");
        _dir.DropPlugin(TestPaths.TestPlugin(name), name + "/net10.0");
        var logger = new ListLogger();
        using (var first = new PluginCatalog(Path.Combine(_dir.Path, "plugins"), logger))
        {
            first.LoadAll();
            first.Errors.Should().ContainSingle().Which.Reason.Should()
                .Contain("but net10.0/" + name + ".dll has one: the build folder was copied inside it").And.Contain("cp -r <build>/net10.0/.");
        }
        foreach (var f in Directory.GetFiles(nested)) File.Copy(f, Path.Combine(_dir.Path, "plugins", name, Path.GetFileName(f)));
        using var second = new PluginCatalog(Path.Combine(_dir.Path, "plugins"), logger);
        second.LoadAll();
        second.Errors.Should().BeEmpty();
        logger.Lines.Should().Contain(l => l.StartsWith("Warning: Plugin " + name + ": net10.0/" + name + ".dll is another build of it inside its folder"));
    }

    // The package's two folders: shipped plugins in /usr/lib/sentinel/plugins, drop-ins in /etc/sentinel/plugins.
    [Fact]
    public async Task TwoPluginFolders_ALaterFoldersPluginReplacesAnEarliersOfTheSameName_AndBothAreWatched()
    {
        const string versioned = "Sentinel.TestPlugins.Versioned";
        var (shipped, dropIns) = (Path.Combine(_dir.Path, "shipped"), Path.Combine(_dir.Path, "drop-ins"));
        _dir.DropPlugin(TestPaths.TestPlugin(versioned + ".V1"), "../shipped/" + versioned);
        _dir.DropPlugin(TestPaths.TestPlugin("Sentinel.TestPlugins.JsonNew"), "../shipped/Sentinel.TestPlugins.JsonNew");
        _dir.DropPlugin(TestPaths.TestPlugin(versioned + ".V2"), "../drop-ins/" + versioned);
        var logger = new ListLogger();
        using var catalog = new PluginCatalog([shipped, dropIns], logger) { ReloadDelay = TimeSpan.FromMilliseconds(100) };
        catalog.LoadAll();

        catalog.Errors.Should().BeEmpty();
        catalog.Plugins.Select(p => (p.Name, p.Path)).Should().Equal(
            ("Sentinel.TestPlugins.JsonNew", Path.Combine(shipped, "Sentinel.TestPlugins.JsonNew")), (versioned, Path.Combine(dropIns, versioned)));
        catalog.Plugins.Single(p => p.Name == versioned).Version.Should().StartWith("2.0.0");
        logger.Lines.Should().Contain($"Information: Plugin {versioned}: using {Path.Combine(dropIns, versioned)}, which replaces {Path.Combine(shipped, versioned)} (a later plugin folder wins)");

        catalog.StartWatching();
        var changes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        catalog.Changed += names => { foreach (var n in names) changes.Enqueue(n); };
        Directory.Delete(Path.Combine(dropIns, versioned), recursive: true);
        await Eventually.Until(() => catalog.Plugins.SingleOrDefault(p => p.Name == versioned) is { Version: var v } && v.StartsWith("1.0.0", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), context: () => string.Join("\n", logger.Lines));
        catalog.Plugins.Single(p => p.Name == versioned).Path.Should().Be(Path.Combine(shipped, versioned), "the drop-in is gone: the shipped one is loaded again");

        _dir.DropPlugin(TestPaths.TestPlugin("Sentinel.TestPlugins.JsonOld"), "../drop-ins/Sentinel.TestPlugins.JsonOld");
        await Eventually.Until(() => catalog.TryGet(PluginKind.Probe, "json-old", out _), TimeSpan.FromSeconds(20), context: () => string.Join("\n", logger.Lines));
        changes.Should().Contain(versioned).And.Contain("Sentinel.TestPlugins.JsonOld");
    }

    // 0.2 changed the contract (ProbeStatus.Unhealthy is 0): a plugin built against 0.1 would return "Healthy" (0 then)
    // and be read as a failure. It is refused with what to do. Made here by pointing a real plugin's reference at 0.1.
    [Theory]
    [InlineData(0, 1, "was built against the plugin contract 0.1 (Sentinel.Abstractions 0.1.0); this Sentinel's is 0.2: rebuild it against Sentinel.Abstractions 0.2")]
    [InlineData(0, 3, "was built against the plugin contract 0.3, newer than this Sentinel's 0.2: upgrade Sentinel")]
    public void APluginBuiltAgainstAnotherContractVersion_IsRefused_WithWhatToDo(int major, int minor, string reason)
    {
        PluginCatalog.ContractVersion.ToString(2).Should().Be("0.2");
        const string name = "Sentinel.TestPlugins.JsonNew";
        var folder = _dir.DropPlugin(TestPaths.TestPlugin(name), name);
        var dll = Path.Combine(folder, name + ".dll");
        using (var module = Mono.Cecil.ModuleDefinition.ReadModule(new MemoryStream(File.ReadAllBytes(dll))))
        {
            module.AssemblyReferences.Single(r => r.Name == "Sentinel.Abstractions").Version = new Version(major, minor, 0, 0);
            module.Write(dll);
        }
        using var catalog = new PluginCatalog(Path.Combine(_dir.Path, "plugins"), NullLogger.Instance);
        catalog.LoadAll();

        catalog.Errors.Should().ContainSingle().Which.Reason.Should().Contain(reason);
        catalog.TryGet(PluginKind.Probe, "json-new", out _).Should().BeFalse();
    }

    [Fact]
    public void PluginThatThrowsInRegister_IsReportedByName_AndTheOthersLoad()
    {
        using var catalog = Load("Sentinel.TestPlugins.Throwing", "Sentinel.TestPlugins.JsonNew");

        var error = catalog.Errors.Should().ContainSingle().Subject;
        error.Plugin.Should().Be("Sentinel.TestPlugins.Throwing");
        error.Reason.Should().Be("ThrowingPlugin.Register threw InvalidOperationException: the plugin is broken on purpose");
        catalog.TryGet(PluginKind.Probe, "json-new", out _).Should().BeTrue();
        catalog.Plugins.Select(p => p.Name).Should().Equal("Sentinel.TestPlugins.JsonNew");
    }

    [Fact]
    public async Task DuplicateName_IsReportedWithBothPlugins_AndTheFirstKeepsIt()
    {
        using var catalog = Load("Sentinel.TestPlugins.JsonOld", "Sentinel.TestPlugins.Shadow");

        catalog.Errors.Should().ContainSingle().Which.Reason.Should()
            .Be("probe name 'json-old' is already registered by plugin 'Sentinel.TestPlugins.JsonOld': rename one of them (this one was skipped)");
        catalog.Errors[0].Plugin.Should().Be("Sentinel.TestPlugins.Shadow");
        (await Check(catalog, "json-old")).Data.Should().ContainKey("json-version");
        (await Check(catalog, "shadow")).Description.Should().Be("shadow");
    }

    [Fact]
    public void FolderWithoutItsAssembly_AndGarbageAssembly_AreReported()
    {
        _dir.File("plugins/Empty/readme.txt", "nothing here");
        _dir.File("plugins/Garbage/Garbage.dll", "this is not an assembly");
        using var catalog = Load("Sentinel.TestPlugins.JsonNew");

        catalog.Errors.Select(e => (e.Plugin, e.Reason)).Should().BeEquivalentTo(new[]
        {
            ("Empty", "no Empty.dll in the folder: a plugin folder must contain the assembly named like the folder"),
            ("Garbage", "Garbage.dll is not a valid .NET assembly (still being copied, or built for another platform)"),
        });
        catalog.TryGet(PluginKind.Probe, "json-new", out _).Should().BeTrue();
    }

    [Fact]
    public void FirstPartyHttpPlugin_IsPublishedIntoPluginsAndLoads()
    {
        _dir.DropPlugin(TestPaths.FirstPartyPlugin("Sentinel.Plugins.Http"), "Sentinel.Plugins.Http");
        using var catalog = Load();

        catalog.Errors.Should().BeEmpty();
        catalog.TryGet(PluginKind.Probe, "http", out var reg).Should().BeTrue();
        reg.Plugin.Should().Be("Sentinel.Plugins.Http");
        File.Exists(Path.Combine(TestPaths.FirstPartyPlugin("Sentinel.Plugins.Http"), "Sentinel.Abstractions.dll"))
            .Should().BeFalse("the contract is shared with the host, never shipped in a plugin folder");
    }

    [Fact]
    public void ReloadFolder_SwapsInTheNewBuild_AndRemovesADeletedPlugin()
    {
        using var catalog = Load();
        _dir.DropPlugin(TestPaths.TestPlugin("Sentinel.TestPlugins.Versioned.V1"), "Sentinel.TestPlugins.Versioned");
        var changes = new List<string>();
        catalog.Changed += c => changes.AddRange(c);

        catalog.ReloadFolder("Sentinel.TestPlugins.Versioned");
        catalog.TryGet(PluginKind.Probe, "versioned", out var v1).Should().BeTrue();
        catalog.Plugins.Single().Version.Should().StartWith("1.0.0");

        _dir.DropPlugin(TestPaths.TestPlugin("Sentinel.TestPlugins.Versioned.V2"), "Sentinel.TestPlugins.Versioned");
        catalog.ReloadFolder("Sentinel.TestPlugins.Versioned");
        catalog.TryGet(PluginKind.Probe, "versioned", out var v2).Should().BeTrue();
        v2.Generation.Should().BeGreaterThan(v1.Generation);
        v2.ImplementationType.Should().NotBeSameAs(v1.ImplementationType);
        catalog.Plugins.Single().Version.Should().StartWith("2.0.0");

        Directory.Delete(Path.Combine(_dir.Path, "plugins", "Sentinel.TestPlugins.Versioned"), recursive: true);
        catalog.ReloadFolder("Sentinel.TestPlugins.Versioned");
        catalog.TryGet(PluginKind.Probe, "versioned", out _).Should().BeFalse();
        changes.Should().Equal(Enumerable.Repeat("Sentinel.TestPlugins.Versioned", 3));
    }

    [Fact]
    public void ReloadOfABrokenBuild_KeepsThePreviousVersion()
    {
        using var catalog = Load();
        var folder = _dir.DropPlugin(TestPaths.TestPlugin("Sentinel.TestPlugins.Versioned.V1"), "Sentinel.TestPlugins.Versioned");
        catalog.ReloadFolder("Sentinel.TestPlugins.Versioned");
        File.WriteAllText(Path.Combine(folder, "Sentinel.TestPlugins.Versioned.dll"), "half-copied garbage");

        catalog.ReloadFolder("Sentinel.TestPlugins.Versioned");

        catalog.TryGet(PluginKind.Probe, "versioned", out _).Should().BeTrue();
        catalog.Errors.Should().ContainSingle().Which.Reason.Should().EndWith("still running the previously loaded version");
    }

    public void Dispose() => _dir.Dispose();
}
