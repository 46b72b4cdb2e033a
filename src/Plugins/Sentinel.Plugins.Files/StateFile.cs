using System.Security.Cryptography;
using System.Text.Json;
using Sentinel.Plugins.Shared;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Plugins.Files;

public enum FileFormat { Auto, Json, Yaml, Any }

/// <summary>Validation, hashing and atomic copies of state files, shared by file-valid, backup and restore.</summary>
internal static class StateFile
{
    public static FileFormat Resolve(FileFormat format, string path) => format != FileFormat.Auto ? format
        : Path.GetExtension(path).ToLowerInvariant() switch { ".json" => FileFormat.Json, ".yaml" or ".yml" => FileFormat.Yaml, _ => FileFormat.Any };

    /// <summary>Null when the file is valid; else why not, with line and column where the parser gives them.</summary>
    public static string? Problem(string path, FileFormat format)
    {
        byte[] bytes;
        if (FileKind.NotRegular(path) is { } why) return why;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return "does not exist"; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"cannot be read: {e.Message}"; }
        return Problem(bytes, Resolve(format, path));
    }

    public static string? Problem(byte[] bytes, FileFormat format)
    {
        if (bytes.Length == 0) return "is empty";
        switch (format)
        {
            case FileFormat.Json:
                try
                {
                    using var _ = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Skip });
                    return null;
                }
                catch (JsonException e) { return $"is not valid JSON: line {e.LineNumber + 1}, column {e.BytePositionInLine + 1}: {First(e.Message)}"; }
            case FileFormat.Yaml:
                try
                {
                    new YamlStream().Load(new StringReader(System.Text.Encoding.UTF8.GetString(bytes)));
                    return null;
                }
                catch (YamlException e) { return $"is not valid YAML: line {e.Start.Line}, column {e.Start.Column}: {(e.InnerException ?? e).Message}"; }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                {
                    return "is not valid YAML: its structure is broken (an unclosed '[', '{' or quote, or a duplicate key)";
                }
            default:
                return null;
        }
    }

    private static string First(string message) => message.Split(" Path:")[0].Split(" LineNumber:")[0].Trim();

    public static string Hash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));

    /// <summary>Writes through a temporary file in the same folder and renames it into place.</summary>
    public static void WriteAtomic(string path, byte[] bytes)
    {
        var tmp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
        {
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The files a path names: itself, or the matches of a * or ? in its file name.</summary>
    public static List<string> Expand(string path)
    {
        var name = Path.GetFileName(path);
        if (!name.Contains('*') && !name.Contains('?')) return [path];
        var dir = Path.GetDirectoryName(path)!;
        return Directory.Exists(dir) ? Directory.GetFiles(dir, name).Order(StringComparer.Ordinal).ToList() : [];
    }

    /// <summary>Backups of <paramref name="file"/> in <paramref name="dir"/>, newest first: <c>&lt;name&gt;.&lt;yyyyMMddTHHmmssfffZ&gt;.bak</c>.</summary>
    public static List<string> Backups(string dir, string file)
    {
        if (!Directory.Exists(dir)) return [];
        var prefix = Path.GetFileName(file) + ".";
        return Directory.GetFiles(dir, prefix + "*.bak").Where(f => Path.GetFileName(f).Length == prefix.Length + 19 + 4)
            .OrderByDescending(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
    }

    public static string BackupName(string dir, string file, DateTimeOffset at) => Path.Combine(dir, $"{Path.GetFileName(file)}.{at.UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}.bak");
}
