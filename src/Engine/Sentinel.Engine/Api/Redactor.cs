using System.Collections;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Api;

/// <summary>
/// Keeps secrets out of the API: every option marked <see cref="SecretAttribute"/>, every header-like entry whose key
/// names a credential (authorization, token, password, ...), and the API token are collected from the running
/// configuration; option views show them as <c>***</c>, and every text the API sends has their values replaced, so a
/// secret echoed into a probe's description or an error is caught too.
/// </summary>
internal sealed partial class Redactor
{
    public const string Mask = "***";
    private readonly string[] _secrets;

    private Redactor(IEnumerable<string> secrets)
        // Longest first, so a secret that contains another is replaced whole; very short values would mask ordinary words.
        => _secrets = secrets.Where(s => s.Length >= 4).Distinct(StringComparer.Ordinal).OrderByDescending(s => s.Length).ToArray();

    public static Redactor Empty { get; } = new([]);

    /// <summary>A redactor for the given values (e.g. the heartbeat's, when the rest of the config is invalid).</summary>
    public static Redactor Of(IEnumerable<string> secrets) => new(secrets);

    /// <summary>True when there is nothing to keep secret.</summary>
    public bool IsEmpty => _secrets.Length == 0;

    public static Redactor For(SentinelConfig config, string? token)
    {
        var options = config.Rules.SelectMany(r => new[] { r.ProbeOptions }.Concat(r.Remediate.Concat(r.Run).Append(r.Ping).OfType<ActionDefinition>().Select(a => a.Options)))
            .Concat(config.Channels.Select(c => c.Options))
            .Concat(config.Heartbeat?.To.Select(a => a.Options) ?? []);
        return new Redactor(options.SelectMany(SecretValues).Append(token ?? "").Append(config.Engine.HttpToken ?? "")
            .Concat(config.Engine.Cluster is { } cluster ? ClusterSecrets(cluster.ConnectionString) : []));
    }

    // The cluster's connection string and its password (a driver's error may quote either).
    private static IEnumerable<string> ClusterSecrets(string connectionString)
    {
        yield return connectionString;
        string? password = null;
        try { password = new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Password; }
        catch (ArgumentException) { }
        if (!string.IsNullOrEmpty(password)) yield return password;
    }

    public string Apply(string text)
    {
        foreach (var s in _secrets)
            if (text.Contains(s, StringComparison.Ordinal)) text = text.Replace(s, Mask, StringComparison.Ordinal);
        return text;
    }

    /// <summary>A probe's data with secrets replaced in its text values (and lists of lines); the same instance when none was in it.</summary>
    public IReadOnlyDictionary<string, object>? Apply(IReadOnlyDictionary<string, object>? data)
    {
        if (data is null || _secrets.Length == 0) return data;
        Dictionary<string, object>? copy = null;
        foreach (var (key, value) in data)
        {
            object redacted = value switch
            {
                string text => Apply(text),
                IEnumerable<string> lines when lines.Any(l => !ReferenceEquals(Apply(l), l)) => lines.Select(Apply).ToList(),
                // A parsed body (the http probe's JSON) or any other structure: redacted in its JSON form, so a token
                // echoed deep inside it is caught too (*** needs no escaping in JSON).
                System.Text.Json.JsonElement or JsonNode => ApplyJson(value),
                _ => value,
            };
            if (ReferenceEquals(redacted, value)) continue;
            copy ??= new Dictionary<string, object>(data, StringComparer.Ordinal);
            copy[key] = redacted;
        }
        return copy ?? data;
    }

    private object ApplyJson(object value)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(value);
        var safe = Apply(json);
        return ReferenceEquals(safe, json) || safe == json ? value : System.Text.Json.JsonDocument.Parse(safe).RootElement.Clone();
    }

    /// <summary>The option values to keep secret.</summary>
    public static IEnumerable<string> SecretValues(object? options)
    {
        if (options is null) yield break;
        foreach (var p in Properties(options.GetType()))
        {
            var value = p.GetValue(options);
            if (p.GetCustomAttribute<SecretAttribute>() is not null || SecretKey().IsMatch(p.Name))
                foreach (var s in Strings(value)) yield return s;
            else if (value is IDictionary map)
                foreach (DictionaryEntry e in map)
                    if (SecretKey().IsMatch(e.Key.ToString() ?? "")) foreach (var s in Strings(e.Value)) yield return s;
        }
    }

    /// <summary>Options as the config writes them (YAML keys), with secret values masked.</summary>
    public static JsonObject View(object? options)
    {
        var result = new JsonObject();
        if (options is null) return result;
        foreach (var p in Properties(options.GetType()))
        {
            var value = p.GetValue(options);
            if (value is null) continue;
            var secret = p.GetCustomAttribute<SecretAttribute>() is not null || SecretKey().IsMatch(p.Name);
            JsonNode? node;
            if (secret) node = Mask;
            else if (value is IDictionary map)
            {
                var o = new JsonObject();
                foreach (DictionaryEntry e in map)
                    o[e.Key.ToString() ?? ""] = SecretKey().IsMatch(e.Key.ToString() ?? "") ? Mask : Scalar(e.Value);
                node = o;
            }
            else if (value is IEnumerable list and not string) node = new JsonArray(list.Cast<object?>().Select(Scalar).ToArray());
            else node = Scalar(value);
            result[YamlBinder.KeyOf(p)] = node;
        }
        return result;
    }

    private static IEnumerable<PropertyInfo> Properties(Type t)
        => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanRead && p.GetIndexParameters().Length == 0);

    private static JsonNode? Scalar(object? v) => v switch
    {
        null => null,
        TimeSpan t => Duration.Format(t),
        bool b => b,
        int or long or double or float or decimal => JsonValue.Create(Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture)),
        Enum e => YamlBinder.Kebab(e.ToString()),
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture),
    };

    private static IEnumerable<string> Strings(object? value) => value switch
    {
        null => [],
        string s => [s],
        Uri u => [u.ToString(), u.OriginalString],
        IDictionary map => map.Values.Cast<object?>().SelectMany(Strings),
        IEnumerable list => list.Cast<object?>().SelectMany(Strings),
        _ => [Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""],
    };

    [GeneratedRegex("(password|passwd|secret|token|authorization|cookie|api-?key|apikey|private-?key)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretKey();
}
