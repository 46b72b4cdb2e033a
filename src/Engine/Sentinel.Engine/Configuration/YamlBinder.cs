using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text;
using Sentinel.Abstractions;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Engine.Configuration;

/// <summary>
/// Binds YAML nodes to plain option classes: kebab-case keys (or <see cref="ConfigKeyAttribute"/>),
/// <c>${ENV}</c> expansion, durations, sizes, enums, lists and maps; unknown keys are errors with a
/// did-you-mean; DataAnnotations are checked. Every error is collected with its file, line and column.
/// </summary>
internal sealed class YamlBinder(string file, Func<string, string?> env, List<ConfigError> errors, BindingLocations locations, string? baseDirectory = null)
{
    public BindingLocations Locations { get; } = locations;

    private SourceLocation? _fallback;

    public SourceLocation At(YamlNode node) => node.Start.Line == 0 && _fallback is { } at
        ? at
        : new(file, (int)node.Start.Line, (int)node.Start.Column);

    /// <summary>Binds an absent block as an empty mapping, so defaults apply and missing required keys are reported at <paramref name="at"/>.</summary>
    /// <summary>Handed to options' IValidatableObject.Validate as ValidationContext.Items (e.g. ValidationKeys.Supervised).</summary>
    public IDictionary<object, object?>? ValidationItems { get; set; }

    public object? BindEmpty(Type type, string path, SourceLocation at)
    {
        _fallback = at;
        try { return Bind(new YamlMappingNode(), type, path); }
        finally { _fallback = null; }
    }

    public void Error(YamlNode node, string path, string message)
        => errors.Add(new ConfigError(At(node), path.Length == 0 ? message : $"{path}: {message}"));

    public T? Bind<T>(YamlNode node, string path) where T : class => Bind(node, typeof(T), path) as T;

    public object? Bind(YamlNode node, Type type, string path)
    {
        if (typeof(YamlNode).IsAssignableFrom(type))
        {
            if (type.IsInstanceOfType(node)) return node;
            Error(node, path, $"expected {Describe(type)}, found {Kind(node)}");
            return null;
        }
        var underlying = Nullable.GetUnderlyingType(type);
        if (node is YamlScalarNode s && IsNull(s))
        {
            if (underlying is not null || !type.IsValueType) return null;
            Error(node, path, $"a value is required here ({Describe(type)})");
            return null;
        }
        type = underlying ?? type;
        if (IsScalarType(type))
        {
            if (node is YamlScalarNode scalar) return ConvertScalar(scalar, type, path);
            Error(node, path, $"expected {Describe(type)}, found {Kind(node)}");
            return null;
        }
        if (DictionaryValueType(type) is { } valueType) return BindDictionary(node, type, valueType, path);
        if (ListElementType(type) is { } elementType) return BindList(node, type, elementType, path);
        return BindObject(node, type, path);
    }

    private object? BindObject(YamlNode node, Type type, string path)
    {
        if (node is not YamlMappingNode map)
        {
            Error(node, path, $"expected a mapping of keys ({string.Join(", ", Properties(type).Keys)}), found {Kind(node)}");
            return null;
        }
        object instance;
        try { instance = Activator.CreateInstance(type)!; }
        catch (Exception ex)
        {
            Error(node, path, $"cannot create {type.Name} ({ex.Message}): the options class needs a public parameterless constructor");
            return null;
        }
        Locations.SetObject(instance, At(node));
        var props = Properties(type);
        var firstError = errors.Count;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var failed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, path, "keys must be plain names");
                continue;
            }
            var keyPath = Join(path, key);
            if (!props.TryGetValue(key, out var prop))
            {
                Error(keyNode, path, $"unknown key '{key}'" + DidYouMean.Suffix(key, props.Keys, "valid keys"));
                continue;
            }
            seen.Add(key);
            Locations.SetKey(instance, key, At(valueNode));
            var errorCount = errors.Count;
            var value = Bind(valueNode, prop.PropertyType, keyPath);
            if (value is null && errors.Count == errorCount && !AcceptsNull(prop))
                Error(valueNode, keyPath, $"an empty value (~ or nothing after the colon): give {Describe(prop.PropertyType)}, or remove the key for its default");
            // A list or block with an error inside is still kept, so the errors after it are found too.
            if (errors.Count != errorCount) failed.Add(key);
            if (errors.Count != errorCount && value is null) continue;
            if (value is string relative && baseDirectory is not null && prop.GetCustomAttribute<FilePathAttribute>() is not null
                && relative.Length > 0 && !Path.IsPathRooted(relative))
                value = Path.GetFullPath(Path.Combine(baseDirectory, relative));
            try { prop.SetValue(instance, value); }
            catch (Exception ex) { Error(valueNode, keyPath, ex.InnerException?.Message ?? ex.Message); }
        }
        seen.ExceptWith(failed);
        Validate(instance, props, seen, failed, map, path);
        HideSecrets(props, map, firstError);
        return instance;
    }

    // An error about a [Secret] option (a malformed token, a webhook URL that does not parse) must not print it:
    // validate's and run's output, the log and status.json's config errors would carry it. What this mapping wrote
    // for its secret keys (as written and as expanded) is *** in every error raised while binding it.
    private void HideSecrets(IReadOnlyDictionary<string, PropertyInfo> props, YamlMappingNode map, int firstError)
    {
        if (errors.Count == firstError) return;
        var hidden = new List<string>();
        foreach (var (key, prop) in props)
        {
            if (prop.GetCustomAttribute<SecretAttribute>() is null || !map.Children.TryGetValue(new YamlScalarNode(key), out var value)) continue;
            var scalars = value is YamlSequenceNode list ? list.Children.OfType<YamlScalarNode>() : value is YamlScalarNode one ? [one] : [];
            foreach (var raw in scalars.Select(n => n.Value).OfType<string>())
            {
                hidden.Add(raw);
                hidden.Add(EnvExpander.Expand(raw, env, out _));
            }
        }
        hidden = hidden.Where(h => h.Trim().Length >= 4).Distinct(StringComparer.Ordinal).OrderByDescending(h => h.Length).ToList();
        if (hidden.Count == 0) return;
        for (var i = firstError; i < errors.Count; i++)
            errors[i] = errors[i] with { Message = hidden.Aggregate(errors[i].Message, (m, h) => m.Replace(h, "***", StringComparison.Ordinal)) };
    }

    private readonly HashSet<object> _invalid = new(ReferenceEqualityComparer.Instance);

    /// <summary>Whether a value of <paramref name="instance"/> broke one of its bounds ([Required], [Range], [DurationRange], Validate).</summary>
    public bool IsInvalid(object instance) => _invalid.Contains(instance);

    private void Validate(object instance, IReadOnlyDictionary<string, PropertyInfo> props, HashSet<string> seen, HashSet<string> failed, YamlMappingNode map, string path)
    {
        var before = errors.Count;
        try { ValidateProperties(instance, props, seen, failed, map, path); }
        finally { if (errors.Count > before) _invalid.Add(instance); }
    }

    private void ValidateProperties(object instance, IReadOnlyDictionary<string, PropertyInfo> props, HashSet<string> seen, HashSet<string> failed, YamlMappingNode map, string path)
    {
        foreach (var (key, prop) in props)
        {
            if (failed.Contains(key)) continue; // already reported where it was bound
            foreach (var attr in prop.GetCustomAttributes<ValidationAttribute>(inherit: true))
            {
                if (attr is RequiredAttribute)
                {
                    if (!seen.Contains(key) || prop.GetValue(instance) is null or "")
                        errors.Add(new ConfigError(Locations.Of(instance, key), $"{(path.Length == 0 ? "" : path + ": ")}missing required key '{key}'"));
                    continue;
                }
                if (!seen.Contains(key)) continue;
                var value = prop.GetValue(instance);
                var context = new ValidationContext(instance) { MemberName = prop.Name, DisplayName = key };
                ValidationResult? result;
                // RangeAttribute converts to its bounds' type: a double beyond int's range throws instead of failing.
                try { result = attr.GetValidationResult(value, context); }
                catch (Exception ex) when (ex is OverflowException or InvalidCastException or FormatException or ArgumentException)
                {
                    result = new ValidationResult(attr is RangeAttribute r ? $"must be between {r.Minimum} and {r.Maximum}" : ex.Message);
                }
                // A duration's bound says what it found itself ("50ms is too short: the shortest interval is 100ms").
                if (result is not null && result != ValidationResult.Success)
                    errors.Add(new ConfigError(Locations.Of(instance, key), attr is DurationRangeAttribute
                        ? $"{Join(path, key)}: {result.ErrorMessage}"
                        : $"{Join(path, key)}: {result.ErrorMessage} (found {Show(value)})"));
            }
        }
        if (instance is IValidatableObject validatable)
        {
            var byName = props.ToDictionary(p => p.Value.Name, p => p.Key, StringComparer.Ordinal);
            foreach (var result in validatable.Validate(new ValidationContext(instance, null, ValidationItems)))
            {
                var key = result.MemberNames.Select(m => byName.GetValueOrDefault(m)).FirstOrDefault(k => k is not null);
                var at = key is null ? At(map) : Locations.Of(instance, key);
                errors.Add(new ConfigError(at, $"{(path.Length == 0 ? "" : path + ": ")}{result.ErrorMessage}"));
            }
        }
    }

    private static readonly NullabilityInfoContext Nullability = new();

    // A property declared nullable (string?, int?) takes ~ as "not set"; a list or an object without ? does not.
    private static bool AcceptsNull(PropertyInfo prop)
    {
        lock (Nullability) return Nullable.GetUnderlyingType(prop.PropertyType) is not null || Nullability.Create(prop).WriteState != NullabilityState.NotNull;
    }

    private object? BindList(YamlNode node, Type listType, Type elementType, string path)
    {
        var items = node is YamlSequenceNode seq ? seq.Children.ToList() : [node];
        var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elementType))!;
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            var label = $"{path}[{i}]";
            if (item is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("name"), out var n) && n is YamlScalarNode { Value: { Length: > 0 } name })
                label += $" ({name})";
            var before = errors.Count;
            var value = Bind(item, elementType, label);
            if (value is not null) list.Add(value);
            else if (errors.Count == before) Error(item, label, "an empty list item (~ or nothing after '-'): give a value, or remove the item");
        }
        if (!listType.IsArray) return list;
        var array = Array.CreateInstance(elementType, list.Count);
        list.CopyTo(array, 0);
        return array;
    }

    private object? BindDictionary(YamlNode node, Type dictType, Type valueType, string path)
    {
        if (node is not YamlMappingNode map)
        {
            Error(node, path, $"expected a mapping, found {Kind(node)}");
            return null;
        }
        var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType), StringComparer.Ordinal)!;
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode { Value: { } key }) { Error(k, path, "keys must be plain names"); continue; }
            dict[key] = Bind(v, valueType, Join(path, key));
        }
        return dict;
    }

    private object? ConvertScalar(YamlScalarNode node, Type type, string path)
    {
        var raw = node.Value ?? "";
        var text = EnvExpander.Expand(raw, env, out var envError);
        if (envError is not null) { Error(node, path, envError); return null; }
        // No name, path, address or pattern holds a NUL (a "\0" escape, or one from the environment): it would cut
        // a path short or break the OS call that gets it.
        if (text.Contains('\0')) { Error(node, path, "a NUL character (\\0) is not allowed in a value: remove it"); return null; }
        if (type == typeof(string) || type == typeof(object)) return text;
        var trimmed = text.Trim();
        if (type == typeof(bool))
        {
            switch (trimmed.ToLowerInvariant())
            {
                case "true" or "yes" or "on": return true;
                case "false" or "no" or "off": return false;
            }
            Error(node, path, $"'{text}' is not a boolean: write true or false");
            return null;
        }
        if (type == typeof(TimeSpan))
        {
            if (Duration.TryParse(trimmed, out var d)) return d;
            Error(node, path, $"'{text}' is not a duration: {Duration.Help}");
            return null;
        }
        if (type == typeof(ByteSize))
        {
            if (ByteSize.TryParse(trimmed, out var b)) return b;
            Error(node, path, $"'{text}' is not a size: write a number with a unit ({ByteSize.UnitList}), e.g. 512MB");
            return null;
        }
        if (type.IsEnum)
        {
            var match = Enum.GetNames(type).FirstOrDefault(n => string.Equals(Kebab(n), trimmed, StringComparison.OrdinalIgnoreCase)
                || string.Equals(n, trimmed, StringComparison.OrdinalIgnoreCase));
            if (match is not null) return Enum.Parse(type, match);
            Error(node, path, $"'{text}' is not one of: {string.Join(", ", Enum.GetNames(type).Select(Kebab))}");
            return null;
        }
        if (type == typeof(Uri))
        {
            if (Uri.TryCreate(trimmed, UriKind.Absolute, out var uri)) return uri;
            Error(node, path, $"'{text}' is not an absolute URL: write it with its scheme, e.g. http://127.0.0.1:8080/health");
            return null;
        }
        if (IsNumber(type))
        {
            try
            {
                var number = System.Convert.ChangeType(trimmed, type, CultureInfo.InvariantCulture);
                if (number is double d && !double.IsFinite(d)) throw new OverflowException(); // NaN, .inf, 1e309
                return number;
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                Error(node, path, $"'{text}' is not {Describe(type)}");
                return null;
            }
        }
        Error(node, path, $"unsupported option type {type.Name}");
        return null;
    }

    private static bool IsNull(YamlScalarNode s)
        => s.Style == YamlDotNet.Core.ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    private static bool IsNumber(Type t) => t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(decimal)
        || t == typeof(float) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong) || t == typeof(ushort) || t == typeof(byte);

    private static bool IsScalarType(Type t) => t == typeof(string) || t == typeof(object) || t == typeof(bool) || t == typeof(TimeSpan)
        || t == typeof(ByteSize) || t == typeof(Uri) || t.IsEnum || IsNumber(t);

    internal static Type? ListElementType(Type t)
    {
        if (t.IsArray) return t.GetElementType();
        if (!t.IsGenericType) return null;
        var def = t.GetGenericTypeDefinition();
        return def == typeof(List<>) || def == typeof(IList<>) || def == typeof(IReadOnlyList<>) || def == typeof(IEnumerable<>)
            || def == typeof(ICollection<>) || def == typeof(IReadOnlyCollection<>)
            ? t.GetGenericArguments()[0]
            : null;
    }

    internal static Type? DictionaryValueType(Type t)
    {
        if (!t.IsGenericType) return null;
        var def = t.GetGenericTypeDefinition();
        var args = t.GetGenericArguments();
        return (def == typeof(Dictionary<,>) || def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>)) && args[0] == typeof(string)
            ? args[1]
            : null;
    }

    /// <summary>The bindable properties of an options type, by YAML key.</summary>
    public static IReadOnlyDictionary<string, PropertyInfo> Properties(Type type)
        => type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.SetMethod!.IsPublic && p.GetIndexParameters().Length == 0)
            .ToDictionary(KeyOf, p => p, StringComparer.Ordinal);

    public static string KeyOf(PropertyInfo p) => p.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? Kebab(p.Name);

    public static string Kebab(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
                sb.Append('-');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    public static string Describe(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(string)) return "a string";
        if (t == typeof(bool)) return "a boolean (true or false)";
        if (t == typeof(TimeSpan)) return "a duration (e.g. 10s)";
        if (t == typeof(ByteSize)) return "a size (e.g. 512MB)";
        if (t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong) || t == typeof(ushort) || t == typeof(byte)) return "a whole number";
        if (IsNumber(t)) return "a number";
        if (t == typeof(Uri)) return "a URL";
        if (t.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(t).Select(Kebab));
        if (ListElementType(t) is { } e) return "a list of " + Describe(e).Replace("a ", "", StringComparison.Ordinal);
        if (DictionaryValueType(t) is not null || typeof(YamlMappingNode).IsAssignableFrom(t)) return "a mapping";
        return "a mapping";
    }

    private static string Kind(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode s => $"'{s.Value}'",
        _ => "something else",
    };

    private static string Show(object? value) => value switch
    {
        null => "nothing",
        TimeSpan t => Duration.Format(t),
        string s => $"'{s}'",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
