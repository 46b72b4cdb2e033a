using Sentinel.Abstractions;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.FileSystemGlobbing;
using Sentinel.Engine.Conditions;
using Sentinel.Engine.Plugins;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Engine.Configuration;

internal sealed record ConfigLoadResult(SentinelConfig? Config, IReadOnlyList<ConfigError> Errors)
{
    public bool IsValid => Config is not null && Errors.Count == 0;

    /// <summary>The engine's heartbeat targets, when they could be read even though something else is wrong (to report the failure).</summary>
    public HeartbeatDefinition? Heartbeat { get; init; }
}

/// <summary>
/// Reads <c>sentinel.yaml</c> and its includes, expands <c>${ENV}</c>, binds every rule's probe options to the
/// plugin's options type, parses conditions, and reports every error at once as <c>file:line:column: message</c>.
/// </summary>
internal sealed partial class ConfigLoader(Func<string, string?>? environment = null)
{
    private readonly Func<string, string?> _env = environment ?? Environment.GetEnvironmentVariable;

    /// <summary>Reads only the <c>engine:</c> section (needed before plugins can be loaded).</summary>
    public (EngineSettings? Settings, IReadOnlyList<ConfigError> Errors) LoadEngine(string path)
    {
        var errors = new List<ConfigError>();
        var full = Path.GetFullPath(path);
        var root = Parse(full, errors, required: true);
        if (root is null) return (null, errors);
        var binder = new YamlBinder(Display(full), _env, errors, new BindingLocations());
        EngineSpec? engine = null;
        if (root.Children.TryGetValue(new YamlScalarNode("engine"), out var node))
            engine = binder.Bind<EngineSpec>(node, "engine");
        var settings = errors.Count > 0 ? null : Resolve(full, engine ?? new EngineSpec());
        if (settings is not null) CheckSystemFolders(full, settings, engine, binder.Locations, errors);
        return errors.Count > 0 ? (null, errors) : (settings, errors);
    }

    /// <summary>A config under this folder is a system install: its folders default to the FHS places.</summary>
    public string SystemConfigRoot { get; init; } = "/etc/";

    private bool IsSystemConfig(string configFile) => configFile.StartsWith(SystemConfigRoot, StringComparison.Ordinal);

    // A config copied to /etc/sentinel with the checkout's `state: ../state` would keep its state in /etc/state:
    // refused, with the fix.
    private void CheckSystemFolders(string configFile, EngineSettings settings, EngineSpec? spec, BindingLocations locations, List<ConfigError> errors)
    {
        if (!IsSystemConfig(configFile) || spec is null) return;
        if (spec.State is not null && settings.StateDirectory.StartsWith(SystemConfigRoot, StringComparison.Ordinal))
            errors.Add(new(locations.Of(spec, "state"), $"engine.state resolves to {settings.StateDirectory}: state does not belong under {SystemConfigRoot.TrimEnd('/')}. Remove the key (the default is /var/lib/sentinel, or systemd's StateDirectory=) or give an absolute path"));
        if (spec.Log.Directory is { Length: > 0 } && settings.LogDirectory.StartsWith(SystemConfigRoot, StringComparison.Ordinal))
            errors.Add(new(locations.Of(spec.Log, "directory"), $"engine.log.directory resolves to {settings.LogDirectory}: logs do not belong under {SystemConfigRoot.TrimEnd('/')}. Remove the key (the default is /var/log/sentinel) or give an absolute path"));
    }

    /// <summary>
    /// Loads the configuration. With <paramref name="allowMissingPlugins"/>, a rule that is valid but for a probe or
    /// action type no loaded plugin provides is not an error: it is listed in <see cref="SentinelConfig.Waiting"/>.
    /// </summary>
    public ConfigLoadResult Load(string path, PluginCatalog catalog, bool allowMissingPlugins = false)
    {
        var errors = new List<ConfigError>();
        var full = Path.GetFullPath(path);
        var files = new List<string> { full };
        var root = Parse(full, errors, required: true);
        if (root is null) return new(null, errors);
        // Counted before the rules are bound: binding 100,000 of them only to refuse them took a minute on a loaded machine.
        if (root.Children.TryGetValue(new YamlScalarNode("rules"), out var listed) && listed is YamlSequenceNode { Children.Count: > MaxRules } tooMany)
            return new(null, [TooManyRules(full, tooMany.Children.Count)]);
        var locations = new BindingLocations();
        var binder = new YamlBinder(Display(full), _env, errors, locations, Path.GetDirectoryName(full));
        var spec = binder.Bind<RootSpec>(root, "") ?? new RootSpec();
        var defaults = spec.Defaults ?? new DefaultsSpec();
        var rules = new List<(RuleSpec Spec, YamlBinder Binder, string Path)>();
        for (var i = 0; i < (spec.Rules?.Count ?? 0); i++)
            if (spec.Rules![i] is { } r) rules.Add((r, binder, $"rules[{i}]"));

        foreach (var include in ResolveIncludes(full, spec, binder, errors))
        {
            files.Add(include);
            var includeRoot = Parse(include, errors, required: false);
            if (includeRoot is null) continue;
            var includeBinder = new YamlBinder(Display(include), _env, errors, locations, Path.GetDirectoryName(include));
            foreach (var (key, _) in includeRoot.Children)
                if (key is YamlScalarNode { Value: "engine" or "defaults" or "include" or "channels" or "notifications" or "maintenance" } k)
                    includeBinder.Error(k, "", $"'{k.Value}' belongs in the main config file {Display(full)}; an included file holds only 'rules'");
            var included = includeBinder.Bind<IncludedFileSpec>(includeRoot, "");
            for (var i = 0; i < (included?.Rules?.Count ?? 0); i++)
                if (included!.Rules![i] is { } r) rules.Add((r, includeBinder, $"rules[{i}]"));
        }

        if (rules.Count > MaxRules)
        {
            errors.Add(TooManyRules(full, rules.Count));
            return new(null, errors);
        }

        var settings = Resolve(full, spec.Engine ?? new EngineSpec());
        CheckSystemFolders(full, settings, spec.Engine, locations, errors);
        var definitions = new List<RuleDefinition>();
        var waiting = new List<WaitingRule>();
        var names = new Dictionary<string, SourceLocation>(StringComparer.Ordinal);
        foreach (var (rule, ruleBinder, rulePath) in rules)
        {
            var label = rule.Name is null ? rulePath : $"{rulePath} ({rule.Name})";
            var def = ResolveRule(rule, ruleBinder, label, defaults, settings, catalog, errors, locations, allowMissingPlugins ? waiting : null);
            if (rule.Name is not null)
            {
                if (names.TryGetValue(rule.Name, out var first))
                {
                    errors.Add(new(locations.Of(rule, "name"), $"{label}: a rule named '{rule.Name}' is already defined at {first}: rule names must be unique"));
                    continue;
                }
                names[rule.Name] = locations.Of(rule, "name");
            }
            if (def is not null) definitions.Add(def);
        }
        CheckDependencies(rules.Select(r => r.Spec).ToList(), locations, errors);
        var channels = ResolveChannels(spec, binder, catalog, errors, locations);
        var maintenance = ResolveMaintenance(spec, names.Keys.ToHashSet(StringComparer.Ordinal), errors, locations);
        var heartbeatErrors = new List<ConfigError>();
        var heartbeat = ResolveHeartbeat(spec.Engine?.Heartbeat, binder, catalog, heartbeatErrors, locations);
        errors.AddRange(heartbeatErrors);
        foreach (var (rule, _, rulePath) in rules)
            foreach (var n in rule.Notify ?? defaults.Notify ?? [])
                if (n?.Channel is { } c && !channels.Any(ch => ch.Name == c))
                    errors.Add(new(locations.Of(n, "channel"), $"rule '{rule.Name ?? rulePath}'.notify: there is no channel named '{c}'"
                        + (channels.Count == 0 ? " (define it under channels:)" : DidYouMean.Suffix(c, channels.Select(ch => ch.Name), "channels"))));

        var engineChannels = spec.Notifications?.Engine is { } named
            ? named
            : (defaults.Notify ?? []).Where(n => n?.Channel is not null && n.After == TimeSpan.Zero).Select(n => n.Channel!).Distinct().ToList() is { Count: > 0 } immediate
                ? immediate
                : channels.Select(c => c.Name).ToList();
        foreach (var c in spec.Notifications?.Engine ?? [])
            if (!channels.Any(ch => ch.Name == c))
                errors.Add(new(locations.Of(spec.Notifications!, "engine"), $"notifications.engine: there is no channel named '{c}'"
                    + (channels.Count == 0 ? " (define it under channels:)" : DidYouMean.Suffix(c, channels.Select(ch => ch.Name), "channels"))));

        if (errors.Count > 0)
        {
            var order = files.Select((f, i) => (Display(f), i)).ToDictionary(x => x.Item1, x => x.i);
            return new(null, errors.OrderBy(e => order.GetValueOrDefault(e.Location.File, int.MaxValue))
                .ThenBy(e => e.Location.Line).ThenBy(e => e.Location.Column).ToList()) { Heartbeat = heartbeatErrors.Count == 0 ? heartbeat : null };
        }
        return new(new SentinelConfig(settings, OnThisNode(definitions), files)
        {
            Channels = channels,
            Maintenance = maintenance,
            Heartbeat = heartbeat,
            GroupWait = spec.Notifications?.GroupWait ?? TimeSpan.FromSeconds(30),
            EngineChannels = engineChannels.Distinct().ToList(),
            Waiting = waiting,
        }, []);
    }

    private IEnumerable<string> ResolveIncludes(string mainFile, RootSpec spec, YamlBinder binder, List<ConfigError> errors)
    {
        var baseDir = Path.GetDirectoryName(mainFile)!;
        var result = new List<string>();
        foreach (var pattern in spec.Include ?? [])
        {
            var at = binder.Locations.Of(spec, "include");
            if (string.IsNullOrWhiteSpace(pattern)) { errors.Add(new(at, "include: an empty entry: give a file or a pattern such as rules.d/*.yaml")); continue; }
            if (!Path.IsPathRooted(pattern) && pattern.Replace('\\', '/').Split('/').Contains(".."))
            {
                errors.Add(new(at, $"include: '{pattern}' leaves the config's folder: write it as an absolute path if that is meant"));
                continue;
            }
            if (!pattern.Contains('*') && !pattern.Contains('?'))
            {
                var file = Path.GetFullPath(Path.Combine(baseDir, pattern));
                if (File.Exists(file)) result.Add(file);
                else errors.Add(new(at, $"include: '{pattern}' does not exist (looked for {file}); fix the path or use a pattern such as rules.d/*.yaml"));
                continue;
            }
            var root = baseDir;
            var relative = pattern;
            if (Path.IsPathRooted(pattern))
            {
                root = Path.GetPathRoot(pattern)!;
                relative = pattern[root.Length..];
            }
            var matcher = new Matcher(StringComparison.Ordinal);
            matcher.AddInclude(relative);
            // Walked without following links (no /proc/self/root loops), skipping what cannot be read, and bounded.
            var walk = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint, MaxRecursionDepth = 32 };
            var files = new List<string>();
            try
            {
                foreach (var f in Directory.EnumerateFiles(root, "*", walk))
                {
                    if (files.Count == MaxIncludeWalk) break;
                    files.Add(f);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { errors.Add(new(at, $"include: '{pattern}': {e.Message}")); continue; }
            if (files.Count == MaxIncludeWalk)
            {
                errors.Add(new(at, $"include: '{pattern}' would search more than {MaxIncludeWalk:N0} files under {root}: narrow it (e.g. rules.d/*.yaml)"));
                continue;
            }
            result.AddRange(matcher.Match(root, files).Files.Select(m => Path.GetFullPath(Path.Combine(root, m.Path))).OrderBy(p => p, StringComparer.Ordinal));
        }
        return result.Where(f => !string.Equals(f, mainFile, StringComparison.Ordinal)).Distinct();
    }

    private static ConfigError TooManyRules(string file, int count)
        => new(new(Display(file), 1, 1), $"{count:N0} rules: at most {MaxRules:N0} are accepted (one Sentinel is not meant for more; split them over several)");

    private static YamlMappingNode? Parse(string path, List<ConfigError> errors, bool required)
    {
        var display = Display(path);
        string text;
        try
        {
            // A file this large is a mistake (a log written over the config, a generated file gone wrong); reading it
            // whole would take gigabytes of memory before a single error could be shown.
            if (new FileInfo(path) is { Exists: true, Length: > MaxFileBytes } big)
            {
                errors.Add(new(new(display, 1, 1), $"the file is {big.Length / (1024.0 * 1024):F1} MiB: a configuration file may be at most {MaxFileBytes / (1024 * 1024)} MiB"));
                return null;
            }
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new(new(display, 0, 0), ex is FileNotFoundException or DirectoryNotFoundException
                ? "the file does not exist: pass the right path with --config, or create it (see config/sentinel.yaml for an example)"
                : $"cannot read the file: {ex.Message}"));
            return null;
        }
        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(text)));
        try { stream.Load(parser); }
        catch (Exception ex) when (ex is YamlException or InvalidOperationException or ArgumentException)
        {
            // YamlDotNet reports most syntax errors as YamlException with a mark; a few only as
            // InvalidOperationException, which are placed where parsing stopped.
            var (message, mark) = ex is YamlException ye
                ? (YamlMessage(ye), ye.Start)
                : (ex is ArgumentException ? "duplicate key: each key may appear once in a mapping" : "the structure is broken here (an unclosed '{', '[' or quote?)", parser.Last);
            if (text.Contains('\t')) message += " (YAML indents with spaces: replace the tabs)";
            errors.Add(new(new(display, Math.Max(1, (int)mark.Line), Math.Max(1, (int)mark.Column)), $"invalid YAML: {message}"));
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            if (required) errors.Add(new(new(display, 1, 1), "the file is empty: it needs at least a 'rules:' list (see config/sentinel.yaml)"));
            return required ? null : new YamlMappingNode();
        }
        if (stream.Documents.Count > 1)
            errors.Add(new(new(display, (int)stream.Documents[1].RootNode.Start.Line, 1), "the file holds more than one YAML document ('---'): put each in its own file"));
        if (stream.Documents[0].RootNode is not YamlMappingNode map)
        {
            var node = stream.Documents[0].RootNode;
            errors.Add(new(new(display, (int)node.Start.Line, (int)node.Start.Column), "the top level must be a mapping of keys (engine, defaults, include, rules)"));
            return null;
        }
        return map;
    }

    private static string YamlMessage(YamlException ex)
    {
        var message = (ex.InnerException as YamlException ?? ex).Message;
        message = LocationPrefix().Replace(message, "");
        if (message.StartsWith("Duplicate key", StringComparison.Ordinal) || ex.InnerException is ArgumentException)
            return "duplicate key: each key may appear once in a mapping";
        return message.TrimEnd('.');
    }

    // Where the folders are when the config does not say: what systemd made for the unit ($STATE_DIRECTORY,
    // $LOGS_DIRECTORY), the FHS places for a config under /etc (installed by the package), else beside the config.
    private EngineSettings Resolve(string configFile, EngineSpec spec)
    {
        var dir = Path.GetDirectoryName(configFile)!;
        string Abs(string p) => Path.GetFullPath(Path.Combine(dir, p));
        var system = IsSystemConfig(configFile);
        string? Env(string name) => _env(name) is { Length: > 0 } v ? v.Split(':')[0] : null;
        var plugins = new FolderList(spec.Plugins is { Count: > 0 } p ? p.Select(Abs) : DefaultPluginFolders(Abs("plugins"), system));
        var state = spec.State is { } s ? Abs(s) : Env("STATE_DIRECTORY") ?? (system ? "/var/lib/sentinel" : Abs("state"));
        var logs = spec.Log.Directory is { } l ? (string.IsNullOrWhiteSpace(l) ? "" : Abs(l)) : Env("LOGS_DIRECTORY") ?? (system ? "/var/log/sentinel" : Abs("logs"));
        return new EngineSettings(
            configFile,
            plugins,
            state,
            logs,
            spec.Log.Level,
            spec.Log.RetainedFiles,
            spec.Http.Enabled,
            spec.Http.Listen,
            spec.MaxConcurrency,
            spec.StateFlushInterval,
            spec.WatchConfig,
            spec.WatchPlugins)
        {
            HttpToken = string.IsNullOrEmpty(spec.Http.Token) ? null : spec.Http.Token,
            History = new HistorySettings(spec.History.Enabled, spec.History.Retention, spec.History.DownsampledRetention, spec.History.FlushInterval),
            Cluster = spec.Cluster is { Postgres: { } postgres } cluster
                ? new ClusterSettings(postgres, cluster.Node ?? Environment.MachineName, cluster.CheckinInterval)
                { Advertise = cluster.Advertise is { } a ? new Uri(a) : null } : null,
        };
    }

    // The shipped plugins beside the executable, then drop-ins beside the config (where a package install has made
    // /etc/sentinel/plugins; elsewhere only when the folder is there, so none is made beside a user's config unasked).
    private static IEnumerable<string> DefaultPluginFolders(string besideConfig, bool system)
    {
        var shipped = Path.Combine(AppContext.BaseDirectory, "plugins");
        var dropIns = system || Directory.Exists(besideConfig);
        if (Directory.Exists(shipped) || !dropIns) yield return shipped;
        if (dropIns) yield return besideConfig;
    }

    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark Last { get; private set; } = Mark.Empty;
        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } e) Last = e.End;
            return moved;
        }
    }

    /// <summary>A path as shown in errors: relative to the working directory when inside it.</summary>
    public static string Display(string path)
    {
        var rel = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel) ? path : rel;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex RuleName();

    /// <summary>A rule's node: that makes every node of a cluster run it.</summary>
    public const string AllNodes = "all";

    // In cluster mode, a rule that names a node: all rule in depends-on means that rule's instance on this node.
    private static List<RuleDefinition> OnThisNode(List<RuleDefinition> rules)
    {
        var instances = rules.Where(r => r.AllNodesOf is not null).ToDictionary(r => r.AllNodesOf!, r => r.Name, StringComparer.Ordinal);
        if (instances.Count == 0) return rules;
        return rules.Select(r => r.DependsOn.Any(instances.ContainsKey) ? r with { DependsOn = r.DependsOn.Select(d => instances.GetValueOrDefault(d, d)).ToList() } : r).ToList();
    }

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex LocationPrefix();
}
