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

public sealed record ConfigLoadResult(SentinelConfig? Config, IReadOnlyList<ConfigError> Errors)
{
    public bool IsValid => Config is not null && Errors.Count == 0;

    /// <summary>The engine's heartbeat targets, when they could be read even though something else is wrong (to report the failure).</summary>
    public HeartbeatDefinition? Heartbeat { get; init; }
}

/// <summary>
/// Reads <c>sentinel.yaml</c> and its includes, expands <c>${ENV}</c>, binds every rule's probe options to the
/// plugin's options type, parses conditions, and reports every error at once as <c>file:line:column: message</c>.
/// </summary>
public sealed partial class ConfigLoader(Func<string, string?>? environment = null)
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
            errors.Add(new(new(Display(full), 1, 1), $"{rules.Count:N0} rules: at most {MaxRules:N0} are accepted (one Sentinel is not meant for more; split them over several)"));
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
        return new(new SentinelConfig(settings, definitions, files)
        {
            Channels = channels,
            Maintenance = maintenance,
            Heartbeat = heartbeat,
            GroupWait = spec.Notifications?.GroupWait ?? TimeSpan.FromSeconds(30),
            EngineChannels = engineChannels.Distinct().ToList(),
            Waiting = waiting,
        }, []);
    }

    private static List<ChannelDefinition> ResolveChannels(RootSpec spec, YamlBinder binder, PluginCatalog catalog, List<ConfigError> errors, BindingLocations locations)
    {
        var result = new List<ChannelDefinition>();
        var specs = (spec.Channels ?? []).Where(c => c is not null).ToList();
        var names = specs.Where(c => c.Name is not null).Select(c => c.Name!).ToHashSet(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < specs.Count; i++)
        {
            var c = specs[i];
            var label = $"channels[{i}]" + (c.Name is null ? "" : $" ({c.Name})");
            if (c.Name is null || c.Type is null) continue;
            if (!seen.Add(c.Name)) { errors.Add(new(locations.Of(c, "name"), $"{label}: a channel named '{c.Name}' is already defined: channel names must be unique")); continue; }
            if (c.Fallback is { } fb && (fb == c.Name || !names.Contains(fb)))
                errors.Add(new(locations.Of(c, "fallback"), fb == c.Name ? $"{label}.fallback: a channel cannot be its own fallback"
                    : $"{label}.fallback: there is no channel named '{fb}'" + DidYouMean.Suffix(fb, names, "channels")));
            if (ResolveAction(new PluginRefSpec { Type = c.Type, With = c.With }, locations.Of(c), locations.Of(c, "type"), label, "channel type", binder, catalog, errors) is { } action)
                result.Add(new ChannelDefinition(c.Name, action.Type, action.Options, c.Fallback, c.FailoverAfter, c.GiveUpAfter, c.Template, action.Location));
        }
        return result;
    }

    // One `{ type, with }` reference to an action: its registration and its options bound, or an error naming the type
    // (or, where a rule may wait for its plugin, the missing type noted in `missing`).
    private static ActionDefinition? ResolveAction(PluginRefSpec spec, SourceLocation at, SourceLocation typeAt, string label, string noun, YamlBinder binder,
        PluginCatalog catalog, List<ConfigError> errors, List<MissingPlugin>? missing = null)
    {
        var type = spec.Type!;
        if (!catalog.TryGet(PluginKind.Action, type, out var reg))
        {
            var hint = UnknownTypeHint(catalog, PluginKind.Action, type);
            if (missing is not null) missing.Add(new MissingPlugin(label, noun, type, typeAt, hint));
            else errors.Add(new(typeAt, $"{label}: unknown {noun} '{type}'" + hint));
            return null;
        }
        var path = $"{label}.with ({type})";
        var options = spec.With is { } w ? binder.Bind(w, reg.OptionsType, path) : binder.BindEmpty(reg.OptionsType, path, at);
        return options is null ? null : new ActionDefinition(reg, options, at);
    }

    private static List<ActionDefinition> ResolveActions(List<PluginRefSpec>? specs, string key, string label, YamlBinder binder, PluginCatalog catalog,
        List<ConfigError> errors, BindingLocations locations, List<MissingPlugin>? missing)
    {
        var actions = new List<ActionDefinition>();
        for (var i = 0; i < (specs?.Count ?? 0); i++)
        {
            if (specs![i] is { Type: not null } spec && ResolveAction(spec, locations.Of(spec), locations.Of(spec, "type"), $"{label}.{key}[{i}]", "action type", binder, catalog, errors, missing) is { } action)
                actions.Add(action);
        }
        return actions;
    }

    private static HeartbeatDefinition? ResolveHeartbeat(HeartbeatSpec? spec, YamlBinder binder, PluginCatalog catalog, List<ConfigError> errors, BindingLocations locations)
    {
        if (spec is null || spec.To.Count == 0) return null;
        if (spec.Every < TimeSpan.FromSeconds(1)) errors.Add(new(locations.Of(spec, "every"), "engine.heartbeat.every: the shortest interval is 1s"));
        var targets = new List<ActionDefinition>();
        for (var i = 0; i < spec.To.Count; i++)
        {
            if (spec.To[i] is { Type: not null } to && ResolveAction(to, locations.Of(to), locations.Of(to, "type"), $"engine.heartbeat.to[{i}]", "type", binder, catalog, errors) is { } action)
                targets.Add(action);
        }
        return new HeartbeatDefinition(spec.Every, targets);
    }

    private static List<MaintenanceWindow> ResolveMaintenance(RootSpec spec, HashSet<string> rules, List<ConfigError> errors, BindingLocations locations)
    {
        var result = new List<MaintenanceWindow>();
        foreach (var (m, i) in (spec.Maintenance ?? []).Select((m, i) => (m, i)))
        {
            if (m?.Name is null) continue;
            var label = $"maintenance[{i}] ({m.Name})";
            foreach (var r in (m.Rules ?? []).Where(r => !rules.Contains(r)))
                errors.Add(new(locations.Of(m, "rules"), $"{label}.rules: there is no rule named '{r}'" + DidYouMean.Suffix(r, rules, "rules")));
            Quartz.CronExpression? cron = null;
            if (m.Cron is not null)
            {
                if (!CronText.TryToQuartz(m.Cron, out var q, out var cronError)) { errors.Add(new(locations.Of(m, "cron"), $"{label}.cron: {cronError}")); continue; }
                cron = new Quartz.CronExpression(q, m.TimeZone is { } tz && TimeZoneInfo.TryFindSystemTimeZoneById(tz, out var zone) ? zone : TimeZoneInfo.Utc);
            }
            // A value that is not a time was reported where the window was bound (its own validation); skip the window.
            var bad = false;
            DateTimeOffset? Parse(string? t)
            {
                if (t is null) return null;
                if (DateTimeOffset.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at)) return at;
                bad = true;
                return null;
            }
            var (start, end) = (Parse(m.Start), Parse(m.End));
            if (bad) continue;
            if (start is { } s && end is { } e && e <= s) { errors.Add(new(locations.Of(m, "end"), $"{label}.end: must be after start")); continue; }
            if (cron is null && start is null) continue;
            result.Add(new MaintenanceWindow(m.Name, m.Rules, cron, m.Duration ?? TimeSpan.Zero, start, end));
        }
        return result;
    }

    private static void CheckDependencies(List<RuleSpec> rules, BindingLocations locations, List<ConfigError> errors)
    {
        var byName = rules.Where(r => r.Name is not null).GroupBy(r => r.Name!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            foreach (var dep in rule.DependsOn ?? [])
            {
                if (dep == rule.Name)
                    errors.Add(new(locations.Of(rule, "depends-on"), $"rule '{rule.Name}'.depends-on: a rule cannot depend on itself"));
                else if (!byName.ContainsKey(dep))
                    errors.Add(new(locations.Of(rule, "depends-on"), $"rule '{rule.Name}'.depends-on: there is no rule named '{dep}'" + DidYouMean.Suffix(dep, byName.Keys, "rules")));
            }
        }
        // A cycle would keep every rule in it from ever being remediated while any of them is down.
        var state = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in byName.Keys) Visit(name, []);

        void Visit(string name, List<string> path)
        {
            if (state.GetValueOrDefault(name) == 2) return;
            if (state.GetValueOrDefault(name) == 1)
            {
                var cycle = path.SkipWhile(n => n != name).Append(name).ToList();
                errors.Add(new(locations.Of(byName[name], "depends-on"), $"rule '{name}'.depends-on: the dependencies form a cycle ({string.Join(" -> ", cycle)}): remove one of them"));
                return;
            }
            state[name] = 1;
            path.Add(name);
            foreach (var dep in byName[name].DependsOn ?? [])
                if (byName.ContainsKey(dep) && dep != name) Visit(dep, path);
            path.RemoveAt(path.Count - 1);
            state[name] = 2;
        }
    }

    // `waiting` is null where a missing plugin is an error; otherwise a rule valid but for its missing types goes there.
    private RuleDefinition? ResolveRule(RuleSpec rule, YamlBinder binder, string label, DefaultsSpec defaults, EngineSettings settings,
        PluginCatalog catalog, List<ConfigError> errors, BindingLocations locations, List<WaitingRule>? waiting)
    {
        var before = errors.Count;
        var missing = new List<MissingPlugin>();
        if (rule.Name is { } name && !RuleName().IsMatch(name))
            errors.Add(new(locations.Of(rule, "name"), $"{label}: '{name}' is not a valid rule name: use letters, digits, '.', '_' and '-', starting with a letter or digit"));

        string? cron = null;
        if (rule.Every is not null && rule.Cron is not null)
            errors.Add(new(locations.Of(rule, "cron"), $"{label}: write either 'every' or 'cron', not both"));
        else if (rule.Cron is not null)
        {
            if (!CronText.TryToQuartz(rule.Cron, out var q, out var cronError)) errors.Add(new(locations.Of(rule, "cron"), $"{label}.cron: {cronError}"));
            else cron = q;
        }
        var every = rule.Cron is null ? rule.Every ?? defaults.Every : (TimeSpan?)null;
        if (every is { } e && e < TimeSpan.FromMilliseconds(100))
            errors.Add(new(locations.Of(rule, rule.Every is null ? null : "every"), $"{label}.every: {Duration.Format(e)} is too short: the shortest interval is 100ms"));
        var timeout = rule.Timeout ?? defaults.Timeout;
        if (timeout <= TimeSpan.Zero)
            errors.Add(new(locations.Of(rule, "timeout"), $"{label}.timeout: must be longer than 0s, e.g. 10s"));

        var conditions = new List<Condition>();
        if (rule.Conditions is { } condNode)
        {
            var items = condNode is YamlSequenceNode seq ? seq.Children.ToList() : [condNode];
            foreach (var item in items)
            {
                if (item is not YamlScalarNode { Value: { } text } scalar)
                {
                    binder.Error(item, label + ".conditions", "each condition is one line of text, e.g. \"status == 200\"");
                    continue;
                }
                var expanded = EnvExpander.Expand(text, _env, out var envError);
                if (envError is not null) { binder.Error(item, label + ".conditions", envError); continue; }
                if (Condition.TryParse(expanded, out var c, out var condError, out var col)) conditions.Add(c!);
                else
                {
                    var at = binder.At(item);
                    var offset = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted ? 1 : 0;
                    errors.Add(new(at with { Column = at.Column + offset + col }, $"{label}.conditions: invalid condition '{text}': {condError}"));
                }
            }
        }

        PluginTypeRegistration? probe = null;
        object? options = null;
        if (rule.Probe is null && rule.Supervise is null)
            errors.Add(new(locations.Of(rule), $"{label}: a rule needs a 'probe' (what to check), or a 'supervise' block (a service it runs and watches)"));
        else if (rule.Probe is null)
        {
            probe = Remediation.SupervisedProbe.Registration;
            options = new Remediation.SupervisedProbeOptions();
        }
        if (rule.Probe?.Type is { } type)
        {
            if (!catalog.TryGet(PluginKind.Probe, type, out var reg))
                missing.Add(new MissingPlugin(label + ".probe", "probe type", type, locations.Of(rule.Probe, "type"), UnknownTypeHint(catalog, PluginKind.Probe, type)));
            else
            {
                probe = reg;
                var path = $"{label}.probe.with ({type})";
                binder.ValidationItems = new Dictionary<object, object?> { [ValidationKeys.Supervised] = rule.Supervise is not null };
                try
                {
                    options = rule.Probe.With is { } with
                        ? binder.Bind(with, reg.OptionsType, path)
                        : binder.BindEmpty(reg.OptionsType, path, locations.Of(rule.Probe));
                }
                finally { binder.ValidationItems = null; }
            }
        }

        var actions = ResolveActions(rule.Remediate, "remediate", label, binder, catalog, errors, locations, missing);
        var runActions = ResolveActions(rule.Run, "run", label, binder, catalog, errors, locations, missing);
        var ping = rule.Ping is { Type: not null } pingSpec ? ResolveAction(pingSpec, locations.Of(pingSpec), locations.Of(pingSpec, "type"), $"{label}.ping", "action type", binder, catalog, errors, missing) : null;
        if (rule.Supervise is { } supervise && rule.Name is not null)
        {
            var supervisedDir = Path.Combine(settings.StateDirectory, "supervise");
            supervise.Stdout ??= Path.Combine(settings.LogDirectory is "" ? supervisedDir : settings.LogDirectory, rule.Name + ".log");
            supervise.Stderr ??= supervise.Stdout;
            supervise.Pidfile ??= Path.Combine(supervisedDir, rule.Name + ".pid");
        }

        if (missing.Count > 0)
        {
            if (waiting is not null && errors.Count == before && rule.Name is not null)
                waiting.Add(new WaitingRule(rule.Name, rule.Description, every is { } w ? "every " + Duration.Format(w) : "cron " + rule.Cron, missing, locations.Of(rule)));
            else
                foreach (var m in missing)
                    errors.Add(new(m.Location, $"{m.Key}: unknown {m.Noun} '{m.Type}'{m.Hint}" + (waiting is null ? MissingPluginAdvice : "")));
            return null;
        }
        if (errors.Count > before || rule.Name is null || probe is null || options is null) return null;
        // An event (a Traceback in a log) may not be there at the next check: waiting for three in a row would never tell it.
        var failure = rule.FailureThreshold
            ?? (System.Reflection.CustomAttributeExtensions.GetCustomAttribute<ReportsEventsAttribute>(probe.ImplementationType) is not null ? 1 : defaults.FailureThreshold);
        var success = rule.SuccessThreshold ?? defaults.SuccessThreshold;
        var policy = RemediationPolicy.From(rule.Backoff ?? defaults.Backoff, rule.RestartBudget ?? defaults.RestartBudget, rule.Grace ?? defaults.Grace);
        var dependsOn = (rule.DependsOn ?? []).Distinct(StringComparer.Ordinal).ToList();
        var fingerprint = Fingerprint(rule, every, cron, timeout, failure, success, probe, [.. actions, .. runActions], policy, dependsOn);
        return new RuleDefinition
        {
            Name = rule.Name,
            Description = rule.Description,
            Every = every,
            Cron = cron,
            CronText = rule.Cron,
            Timeout = timeout,
            Probe = probe,
            ProbeOptions = options,
            Conditions = conditions,
            FailureThreshold = failure,
            SuccessThreshold = success,
            Paused = rule.Paused,
            Remediate = actions,
            Run = runActions,
            Supervise = rule.Supervise,
            Policy = policy,
            DependsOn = dependsOn,
            Notify = (rule.Notify ?? defaults.Notify ?? []).Where(n => n?.Channel is not null).Select(n => new NotifyTarget(n.Channel!, n.After)).ToList(),
            ReminderInterval = rule.ReminderInterval ?? defaults.ReminderInterval,
            SendResolved = rule.SendResolved ?? defaults.SendResolved ?? true,
            MinDown = rule.MinDown ?? defaults.MinDown ?? TimeSpan.Zero,
            AlertOn = (rule.AlertOn ?? defaults.AlertOn)?.ToHashSet() ?? new HashSet<AlertOn> { AlertOn.Down, AlertOn.GaveUp },
            RestartRate = rule.RestartRate ?? new RestartRateSpec(),
            Ping = ping,
            PingEvery = rule.PingEvery ?? TimeSpan.FromMinutes(1),
            Location = locations.Of(rule),
            Fingerprint = fingerprint,
        };
    }

    /// <summary>Appended to an unknown type in a rule where the plugin may simply not be installed yet.</summary>
    public const string MissingPluginAdvice = "; if its plugin is not installed yet, `sentinel run` starts without the rule and starts it when the plugin is dropped in (`validate --allow-missing-plugins` accepts it)";

    private static string UnknownTypeHint(PluginCatalog catalog, PluginKind kind, string type)
    {
        var known = catalog.Names(kind).ToList();
        var noun = kind == PluginKind.Probe ? "probe" : "action";
        var failed = catalog.Errors.Count > 0 ? $"; some plugins failed to load: {string.Join("; ", catalog.Errors.Select(x => x.Plugin))} (see 'sentinel plugins')" : "";
        return (known.Count == 0 ? $" (no {noun} types are loaded: is the plugins folder right?)" : DidYouMean.Suffix(type, known)) + failed;
    }

    private string Fingerprint(RuleSpec rule, TimeSpan? every, string? cron, TimeSpan timeout, int failure, int success, PluginTypeRegistration probe,
        List<ActionDefinition> actions, RemediationPolicy policy, List<string> dependsOn)
    {
        var sb = new StringBuilder();
        sb.Append(rule.Name).Append('|').Append(every?.Ticks).Append('|').Append(cron).Append('|').Append(timeout.Ticks)
          .Append('|').Append(failure).Append('|').Append(success).Append('|').Append(rule.Paused)
          .Append('|').Append(probe.Name).Append('@').Append(probe.Generation).Append('|');
        Canonical(rule.Probe?.With, sb);
        sb.Append('|');
        Canonical(rule.Conditions, sb);
        sb.Append('|').Append(policy).Append('|').Append(string.Join(',', dependsOn)).Append('|');
        foreach (var a in actions) sb.Append(a.Type.Name).Append('@').Append(a.Type.Generation).Append(JsonOf(a.Options)).Append(';');
        sb.Append('|').Append(JsonOf(rule.Supervise));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }

    private static string JsonOf(object? value)
    {
        if (value is null) return "null";
        try { return System.Text.Json.JsonSerializer.Serialize(value, value.GetType(), SentinelJson.Options); }
        catch (Exception ex) when (ex is NotSupportedException or InvalidOperationException) { return value.ToString() ?? ""; }
    }

    private void Canonical(YamlNode? node, StringBuilder sb)
    {
        switch (node)
        {
            case YamlScalarNode s:
                sb.Append('"').Append(EnvExpander.Expand(s.Value ?? "", _env, out _)).Append('"');
                break;
            case YamlSequenceNode seq:
                sb.Append('[');
                foreach (var c in seq.Children) { Canonical(c, sb); sb.Append(','); }
                sb.Append(']');
                break;
            case YamlMappingNode map:
                sb.Append('{');
                foreach (var (k, v) in map.Children.OrderBy(kv => (kv.Key as YamlScalarNode)?.Value, StringComparer.Ordinal))
                {
                    Canonical(k, sb);
                    sb.Append(':');
                    Canonical(v, sb);
                    sb.Append(',');
                }
                sb.Append('}');
                break;
        }
    }

    private const int MaxIncludeWalk = 20_000;
    private const int MaxRules = 100_000;
    private const long MaxFileBytes = 10 * 1024 * 1024;

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

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex LocationPrefix();
}
