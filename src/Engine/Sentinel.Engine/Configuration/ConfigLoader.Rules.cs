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

// One rule, channel, action, heartbeat, maintenance window or dependency list resolved from its spec: bound,
// checked, and (for a rule) fingerprinted so a reload knows what changed.
internal sealed partial class ConfigLoader
{
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
        // every and timeout are bounded where they are written (DurationRange on RuleSpec and DefaultsSpec).
        var every = rule.Cron is null ? rule.Every ?? defaults.Every : (TimeSpan?)null;
        var timeout = rule.Timeout ?? defaults.Timeout;

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
            if (waiting is not null && errors.Count == before && !binder.IsInvalid(rule) && rule.Name is not null)
                waiting.Add(new WaitingRule(rule.Name, rule.Description, every is { } w ? "every " + Duration.Format(w) : "cron " + rule.Cron, missing, locations.Of(rule)));
            else
                foreach (var m in missing)
                    errors.Add(new(m.Location, $"{m.Key}: unknown {m.Noun} '{m.Type}'{m.Hint}" + (waiting is null ? MissingPluginAdvice : "")));
            return null;
        }
        if (errors.Count > before || rule.Name is null || probe is null || options is null) return null;
        var clusterWide = rule.Supervise is null
            && System.Reflection.CustomAttributeExtensions.GetCustomAttribute<ClusterWideAttribute>(probe.ImplementationType) is not null;
        if (rule.Node is { } node && node != AllNodes && !ClusterSpec.NodeName().IsMatch(node))
            errors.Add(new(locations.Of(rule, "node"), $"{label}.node: '{node}' is not a node name: use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. db1)"));
        else if (settings.Cluster is { } cluster && !clusterWide && rule.Node is null)
            errors.Add(new(locations.Of(rule), $"{label}: {(rule.Supervise is not null ? "a supervised service" : $"probe '{probe.Name}'")} is of the box it runs on: "
                + $"in cluster mode, name the node that runs the rule, e.g. node: {cluster.Node} (a rule whose probe checks what any node can reach, such as http, gateway, nagios, heartbeat or timer, runs anywhere)"));
        if (errors.Count > before) return null;
        // An event (a Traceback in a log) may not be there at the next check: waiting for three in a row would never tell it.
        var failure = rule.FailureThreshold
            ?? (System.Reflection.CustomAttributeExtensions.GetCustomAttribute<ReportsEventsAttribute>(probe.ImplementationType) is not null ? 1 : defaults.FailureThreshold);
        var success = rule.SuccessThreshold ?? defaults.SuccessThreshold;
        var policy = RemediationPolicy.From(rule.Backoff ?? defaults.Backoff, rule.RestartBudget ?? defaults.RestartBudget, rule.Grace ?? defaults.Grace);
        var dependsOn = (rule.DependsOn ?? []).Distinct(StringComparer.Ordinal).ToList();
        var fingerprint = Fingerprint(rule, every, cron, timeout, failure, success, probe, [.. actions, .. runActions], policy, dependsOn);
        return new RuleDefinition
        {
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
            // node: all is one rule per node, each node's named NAME@node (on one box it is the rule as written).
            Name = rule.Node == AllNodes && settings.Cluster is { } here ? $"{rule.Name}@{here.Node}" : rule.Name,
            AllNodesOf = rule.Node == AllNodes && settings.Cluster is not null ? rule.Name : null,
            Node = rule.Node == AllNodes ? settings.Cluster?.Node : rule.Node,
            ClusterWide = clusterWide,
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
        sb.Append('|').Append(JsonOf(rule.Supervise)).Append('|').Append(rule.Node);
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
}
