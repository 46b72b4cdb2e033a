using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json.Nodes;
using Sentinel.Abstractions;
using Sentinel.Engine.Plugins;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Engine.Configuration;

/// <summary>
/// A JSON Schema (draft 2020-12) of the whole configuration, made from the same model the loader binds (its keys,
/// types, [Required], [Range], [Description], defaults) and from every loaded plugin's options type: a probe's or
/// action's <c>with:</c> is checked against the type its <c>type:</c> names. For editors (yaml-language-server):
/// completion, hover docs and red squiggles as you type. The loader stays the judge of what only it can know
/// (files that exist, references between rules and channels); what the schema rejects, the loader rejects too.
/// </summary>
internal static class ConfigSchema
{
    public const string Id = "https://sentinel.dev/schema/sentinel.schema.json";

    public static JsonObject Generate(PluginCatalog catalog)
    {
        var defs = new JsonObject();
        var generator = new Generator(catalog, defs);
        var root = generator.Object(typeof(RootSpec));
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema";
        root["$id"] = Id;
        root["title"] = "Sentinel configuration";
        root["description"] = "sentinel.yaml: rules (probe, thresholds, remediation, notify), channels, notifications, maintenance, the engine. See docs/configuration.md.";
        // Every key is optional at the top: an included file (rules only) is checked by the same schema.
        root["$defs"] = defs;
        return root;
    }

    /// <summary>The schema as `sentinel schema` prints it and config/sentinel.schema.json holds it.</summary>
    public static string ToText(PluginCatalog catalog) => Generate(catalog).ToJsonString(new System.Text.Json.JsonSerializerOptions
    {
        WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    }) + "\n";

    private sealed class Generator(PluginCatalog catalog, JsonObject defs)
    {
        public JsonObject Object(Type type)
        {
            var properties = new JsonObject();
            var required = new JsonArray();
            object? defaults = null;
            try { defaults = Activator.CreateInstance(type); } catch (MissingMethodException) { }
            foreach (var (key, prop) in YamlBinder.Properties(type))
            {
                var schema = Property(type, key, prop);
                if (prop.GetCustomAttribute<DescriptionAttribute>()?.Description is { } d) schema["description"] = d;
                if (defaults is not null && Default(prop.GetValue(defaults)) is { } value) schema["default"] = value;
                if (prop.GetCustomAttribute<DurationRangeAttribute>() is { } durations)
                    schema["description"] = $"{(schema["description"] is { } text ? text + " " : "")}{Bounds(durations)}";
                else if (prop.GetCustomAttribute<RangeAttribute>() is { } range)
                {
                    schema["minimum"] = JsonValue.Create(Convert.ToDouble(range.Minimum, System.Globalization.CultureInfo.InvariantCulture));
                    schema["maximum"] = JsonValue.Create(Convert.ToDouble(range.Maximum, System.Globalization.CultureInfo.InvariantCulture));
                }
                properties[key] = schema;
                if (prop.GetCustomAttribute<RequiredAttribute>() is not null) required.Add(key);
            }
            var result = new JsonObject { ["type"] = "object", ["properties"] = properties, ["additionalProperties"] = false };
            if (required.Count > 0) result["required"] = required;
            // A channel is an action with a name: its with: is checked by its type like any action's.
            if (type == typeof(ChannelSpec)) { Ref(PluginKind.Action); result["$ref"] = "#/$defs/action-options"; }
            return result;
        }

        // A probe (rules[].probe) or an action (remediate, run, ping, heartbeat.to, a channel): its with: by its type.
        private JsonObject Property(Type owner, string key, PropertyInfo prop)
        {
            var type = Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType;
            if (type == typeof(PluginRefSpec) || YamlBinder.ListElementType(type) == typeof(PluginRefSpec))
            {
                var one = Ref(key == "probe" ? PluginKind.Probe : PluginKind.Action);
                return type == typeof(PluginRefSpec) ? one : new JsonObject { ["type"] = "array", ["items"] = one };
            }
            var schema = For(type);
            if (owner == typeof(ChannelSpec) && key == "type") schema["enum"] = Names(PluginKind.Action);
            return schema;
        }

        private JsonArray Names(PluginKind kind) => new([.. catalog.Types.Where(t => t.Kind == kind).Select(t => JsonValue.Create(t.Name))]);

        // One definition per kind: { type, with } with the with: of each type, chosen by if/then.
        private JsonObject Ref(PluginKind kind)
        {
            var name = kind == PluginKind.Probe ? "probe" : "action";
            if (!defs.ContainsKey(name))
            {
                defs[name] = new JsonObject(); // placeholder: an options type may refer back
                var cases = new JsonArray();
                foreach (var t in catalog.Types.Where(t => t.Kind == kind))
                {
                    var with = Object(t.OptionsType);
                    if (t.Description is { } d) with["description"] = d;
                    cases.Add(new JsonObject
                    {
                        ["if"] = new JsonObject { ["properties"] = new JsonObject { ["type"] = new JsonObject { ["const"] = t.Name } }, ["required"] = new JsonArray("type") },
                        ["then"] = new JsonObject { ["properties"] = new JsonObject { ["with"] = with } },
                    });
                }
                defs[name + "-options"] = new JsonObject { ["allOf"] = cases };
                defs[name] = new JsonObject
                {
                    ["$ref"] = $"#/$defs/{name}-options",
                    ["type"] = "object",
                    ["properties"] = new JsonObject
                    {
                        ["type"] = new JsonObject { ["enum"] = Names(kind), ["description"] = $"the {name} type (`sentinel plugins` lists them)" },
                        ["with"] = new JsonObject { ["type"] = "object", ["description"] = "the type's options" },
                    },
                    ["required"] = new JsonArray("type"),
                    ["additionalProperties"] = false,
                };
            }
            return new JsonObject { ["$ref"] = $"#/$defs/{name}" };
        }

        private JsonObject For(Type type)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (type == typeof(string) || type == typeof(object)) return new JsonObject { ["type"] = "string" };
            if (type == typeof(bool))
                return new JsonObject { ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "boolean" }, new JsonObject { ["enum"] = new JsonArray("yes", "no", "on", "off") }, Env()) };
            if (type == typeof(TimeSpan))
                return new JsonObject
                {
                    ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "string", ["pattern"] = @"^\s*(0|(\d+(\.\d+)?(us|µs|ms|s|m|h|d))+)\s*$" }, new JsonObject { ["const"] = 0 }, Env()),
                    ["description"] = "a duration: 500ms, 10s, 5m, 1h30m, 7d",
                };
            if (type == typeof(ByteSize))
                return new JsonObject
                {
                    ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "string", ["pattern"] = @"^\s*\d+(\.\d+)?\s*[a-zA-Z]*\s*$" }, new JsonObject { ["type"] = "integer", ["minimum"] = 0 }, Env()),
                    ["description"] = "a size: 512MB, 10 MiB, 2GB",
                };
            if (type == typeof(Uri)) return new JsonObject { ["type"] = "string", ["format"] = "uri" };
            if (type.IsEnum) return new JsonObject { ["enum"] = new JsonArray([.. Enum.GetNames(type).Select(n => JsonValue.Create(YamlBinder.Kebab(n)))]) };
            if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(byte))
                return Scalar(new JsonObject { ["type"] = "integer" });
            if (type == typeof(double) || type == typeof(float) || type == typeof(decimal)) return Scalar(new JsonObject { ["type"] = "number" });
            if (typeof(YamlMappingNode).IsAssignableFrom(type)) return new JsonObject { ["type"] = "object" };
            if (typeof(YamlNode).IsAssignableFrom(type)) return new JsonObject();
            // A list of words may be written as one word (`plugins: ./plugins`, `alert-on: down`): the binder takes both.
            if (YamlBinder.ListElementType(type) is { } element)
                return element == typeof(string) || element.IsEnum
                    ? new JsonObject { ["anyOf"] = new JsonArray(For(element), new JsonObject { ["type"] = "array", ["items"] = For(element) }) }
                    : new JsonObject { ["type"] = "array", ["items"] = For(element) };
            if (YamlBinder.DictionaryValueType(type) is { } value) return new JsonObject { ["type"] = "object", ["additionalProperties"] = For(value) };
            return Object(type);
        }

        // A number, boolean or duration may also be written as ${VAR}: expanded before it is read.
        private static JsonObject Env() => new() { ["type"] = "string", ["pattern"] = @"\$\{[^}]+\}" };

        private static JsonObject Scalar(JsonObject schema)
        {
            if (schema.ContainsKey("anyOf") || schema["type"]?.GetValue<string>() is not ("integer" or "number")) return schema;
            return new JsonObject { ["anyOf"] = new JsonArray(schema, Env()) };
        }

        // JSON Schema has no bounds for a duration string: they are said in the description (the loader enforces them).
        private static string Bounds(DurationRangeAttribute d)
        {
            var low = d.MinimumIsExclusive ? $"longer than {Duration.Format(d.Shortest)}" : $"at least {Duration.Format(d.Shortest)}";
            return d.Longest >= TimeSpan.FromDays(3650) ? $"Must be {low}." : $"Must be {low} and at most {Duration.Format(d.Longest)}.";
        }

        private static JsonNode? Default(object? value) => value switch
        {
            null => null,
            bool b => JsonValue.Create(b),
            int or long or double or float => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)),
            string { Length: > 0 } s => JsonValue.Create(s),
            TimeSpan t => JsonValue.Create(Duration.Format(t)),
            ByteSize size => JsonValue.Create(size.ToString()),
            Enum e => JsonValue.Create(YamlBinder.Kebab(e.ToString())),
            _ => null,
        };
    }
}
