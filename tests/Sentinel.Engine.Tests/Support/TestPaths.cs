using System.Reflection;

namespace Sentinel.Engine.Tests.Support;

public static class TestPaths
{
    private static string Meta(string key) => typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static string RepoRoot { get; } = Path.GetFullPath(Meta("RepoRoot"));

    /// <summary>A test plugin folder as the build laid it out (artifacts/testplugins/&lt;Project&gt;).</summary>
    public static string TestPlugin(string project) => Path.Combine(RepoRoot, "artifacts", "testplugins", project);

    /// <summary>A first-party plugin folder as the build published it (plugins/&lt;Name&gt;).</summary>
    public static string FirstPartyPlugin(string name) => Path.Combine(RepoRoot, "plugins", name);
}

/// <summary>A temporary folder, deleted afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sentinel-tests", Guid.NewGuid().ToString("N")[..12]);

    public string File(string relative, string content)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllText(full, content);
        return full;
    }

    public string Sub(string relative) => Directory.CreateDirectory(System.IO.Path.Combine(Path, relative)).FullName;

    /// <summary>Copies a plugin folder into plugins/&lt;name&gt; under this folder (a real drop-in).</summary>
    public string DropPlugin(string source, string name)
    {
        var target = System.IO.Path.Combine(Path, "plugins", name);
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var dest = System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(source, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(dest)!);
            System.IO.File.Copy(file, dest, overwrite: true);
        }
        return target;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
