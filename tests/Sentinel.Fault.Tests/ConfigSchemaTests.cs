using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Host.Tests;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Fault.Tests;

/// <summary>
/// The JSON Schema `sentinel schema` prints (with the real plugins), checked by an independent JSON Schema library
/// against the shipped config, every YAML example in the docs and invalid variants: whatever the loader accepts the
/// schema accepts, and each structural mistake is refused by both.
/// </summary>
public sealed partial class ConfigSchemaTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-schema", Guid.NewGuid().ToString("N")[..12]);
    private static readonly string Root = SentinelProcess.RepoRoot;
    // One catalog and one schema for the class: a schema's $id can be registered once per process.
    private static readonly Lazy<(PluginCatalog Catalog, JsonSchema Schema)> Shared = new(() =>
    {
        var catalog = new PluginCatalog(Path.Combine(Root, "plugins"), NullLogger.Instance, builtIn: [new Sentinel.Engine.BuiltIn.EngineProbesPlugin()]);
        catalog.LoadAll();
        var schema = ConfigSchema.Generate(catalog);
        return (catalog, JsonSchema.FromText(schema.ToJsonString(), new BuildOptions { SchemaRegistry = new SchemaRegistry() }, new Uri(ConfigSchema.Id)));
    });
    private readonly PluginCatalog _catalog = Shared.Value.Catalog;
    private readonly JsonSchema _schema = Shared.Value.Schema;
    // Every ${VAR} of the docs is set: an address for the URLs, a number for the rest.
    private readonly ConfigLoader _loader = new(name => name.Contains("URL", StringComparison.Ordinal) ? "https://hooks.example.com/x" : "1");

    public ConfigSchemaTests() => Directory.CreateDirectory(_dir);

    private EvaluationResults Evaluate(string yaml) => _schema.Evaluate(ToJson(yaml), new EvaluationOptions { OutputFormat = OutputFormat.List });

    private static string Why(EvaluationResults r)
        => string.Join("; ", (r.Details ?? []).Where(d => d.Errors is { Count: > 0 }).Take(5).Select(d => $"{d.InstanceLocation}: {string.Join(", ", d.Errors!.Values)}"));

    private ConfigLoadResult Load(string yaml, string name = "sentinel.yaml")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return _loader.Load(path, _catalog);
    }

    public static IEnumerable<object[]> Examples()
    {
        yield return ["config/sentinel.yaml", File.ReadAllText(Path.Combine(Root, "config", "sentinel.yaml"))];
        foreach (var f in Directory.GetFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories).Append(Path.Combine(Root, "README.md")).Order(StringComparer.Ordinal))
        {
            var i = 0;
            foreach (Match m in YamlBlock().Matches(File.ReadAllText(f)))
                yield return [$"{Path.GetRelativePath(Root, f)} example {++i}", m.Groups[1].Value];
        }
    }

    [Fact]
    public void TheShippedConfigAndEveryDocsExample_ThatTheLoaderAccepts_TheSchemaAccepts()
    {
        CopyRulesD();
        var accepted = 0;
        var disagreements = new List<string>();
        foreach (var example in Examples())
        {
            var (name, yaml) = ((string)example[0], (string)example[1]);
            var loaded = Load(yaml);
            if (!loaded.IsValid) continue; // a fragment of a config, shown in the docs as part of a larger one
            accepted++;
            var result = Evaluate(yaml);
            if (!result.IsValid) disagreements.Add($"{name}: valid for `sentinel validate`, refused by the schema: {Why(result)}");
        }
        disagreements.Should().BeEmpty();
        accepted.Should().BeGreaterThan(10, "the shipped config and most docs examples are whole configs");
    }

    // The shipped configs point editors at config/sentinel.schema.json, which must be what `sentinel schema` prints
    // with the first-party plugins. SENTINEL_UPDATE_SCHEMA=1 rewrites it after a change to the model or a plugin.
    [Fact]
    public void TheShippedSchemaIsCurrent_AndTheShippedConfigsPointAtIt()
    {
        var path = Path.Combine(Root, "config", "sentinel.schema.json");
        var current = ConfigSchema.ToText(_catalog);
        if (Environment.GetEnvironmentVariable("SENTINEL_UPDATE_SCHEMA") == "1") File.WriteAllText(path, current);
        File.ReadAllText(path).Should().Be(current, "config/sentinel.schema.json is generated: run the tests with SENTINEL_UPDATE_SCHEMA=1 to refresh it");
        File.ReadLines(Path.Combine(Root, "config", "sentinel.yaml")).First().Should().Be("# yaml-language-server: $schema=./sentinel.schema.json");
        foreach (var f in Directory.GetFiles(Path.Combine(Root, "config", "rules.d"), "*.yaml"))
            File.ReadLines(f).First().Should().Be("# yaml-language-server: $schema=../sentinel.schema.json", f);
    }

    private const string Base = """
        engine: { http: { enabled: false }, state: state }
        channels:
          - { name: ops, type: console }
        rules:
          - name: api
            every: 10s
            failure-threshold: 3
            probe: { type: http, with: { url: "http://127.0.0.1:8080/health", follow-redirects: true } }
            notify: [{ channel: ops }]
            alert-on: [down]
        """;

    [Theory]
    [InlineData("an unknown top-level key", "rules:", "rulez: []\nrules:")]
    [InlineData("an unknown rule key", "    every: 10s", "    evrey: 10s")]
    [InlineData("a rule without a name", "  - name: api\n    every", "  - every")]
    [InlineData("a list where a duration goes", "every: 10s", "every: [10s]")]
    [InlineData("a duration without a unit", "every: 10s", "every: ten seconds")]
    [InlineData("a threshold out of range", "failure-threshold: 3", "failure-threshold: 0")]
    [InlineData("a threshold that is not a number", "failure-threshold: 3", "failure-threshold: three")]
    [InlineData("an unknown alert-on", "alert-on: [down]", "alert-on: [downn]")]
    [InlineData("an unknown probe type", "type: http,", "type: htp,")]
    [InlineData("an unknown probe option", "follow-redirects: true", "follow-redirect: true")]
    [InlineData("a probe option of the wrong type", "follow-redirects: true", "follow-redirects: [true]")]
    [InlineData("a probe without a type", "probe: { type: http, with:", "probe: { with:")]
    [InlineData("notify as a string", "notify: [{ channel: ops }]", "notify: ops")]
    [InlineData("an unknown channel type", "type: console }", "type: consol }")]
    [InlineData("a channel without a name", "{ name: ops, type: console }", "{ type: console }")]
    [InlineData("an unknown engine key", "engine: { http:", "engine: { htp:")]
    [InlineData("a boolean that is not one", "enabled: false", "enabled: maybe")]
    [InlineData("rules as a mapping", "rules:\n  - name: api", "rules:\n  api:\n    name: api")]
    [InlineData("include as a number", "rules:", "include: 5\nrules:")]
    [InlineData("an unknown notifications key", "rules:", "notifications: { group-wiat: 30s }\nrules:")]
    public void AStructuralMistake_IsRefusedByBoth(string what, string find, string replace)
    {
        Load(Base).IsValid.Should().BeTrue("the base is valid: " + string.Join("; ", Load(Base).Errors));
        Evaluate(Base).IsValid.Should().BeTrue(Why(Evaluate(Base)));
        Base.Should().Contain(find);
        var broken = Base.Replace(find, replace, StringComparison.Ordinal);
        Load(broken).IsValid.Should().BeFalse($"{what}: `sentinel validate` refuses it");
        Evaluate(broken).IsValid.Should().BeFalse($"{what}: the schema refuses it");
    }

    // YAML to JSON as an editor's YAML support reads it (YAML 1.2 core schema): plain scalars become numbers,
    // booleans and null where they look so; quoted ones stay strings.
    private static JsonElement ToJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var node = stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode);
        return JsonSerializer.SerializeToElement(node);
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", Convert(c.Value)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(Convert)]),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } p => Plain(p.Value ?? ""),
        YamlScalarNode q => JsonValue.Create(q.Value),
        _ => null,
    };

    private static JsonNode? Plain(string v)
    {
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntegerText().IsMatch(v) && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        if (FloatText().IsMatch(v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    private void CopyRulesD()
    {
        var to = Path.Combine(_dir, "rules.d");
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(Path.Combine(Root, "config", "rules.d"))) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
    }

    [GeneratedRegex(@"^```ya?ml\n(.*?)^```", RegexOptions.Singleline | RegexOptions.Multiline)]
    private static partial Regex YamlBlock();

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerText();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatText();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
