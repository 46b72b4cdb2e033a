using System.CommandLine;
using System.Text;
using Microsoft.Extensions.FileSystemGlobbing;
using YamlDotNet.RepresentationModel;

namespace Sentinel.Host;

/// <summary>
/// What the command tree says about itself, for shells and `man`: `sentinel completion bash|zsh` (commands, options,
/// and the rule and channel names of the config, read fresh at each Tab), and `sentinel man` (a roff page, sentinel.1).
/// Both are made from the same tree as `--help`, so they cannot drift from it.
/// </summary>
internal static class CommandTreeDocs
{
    // Commands whose argument is a rule, or a channel: Tab offers the names from the config.
    private static readonly HashSet<string> RuleCommands = ["status", "history", "logs", "check", "pause", "resume", "run-now", "remediate", "stop", "start", "restart"];

    public static int Completion(RootCommand root, string shell)
    {
        switch (shell)
        {
            case "bash": Console.Write(Bash(root)); return 0;
            case "zsh": Console.Write("#compdef sentinel\nautoload -U +X bashcompinit && bashcompinit\n" + Bash(root)); return 0;
            default:
                Console.Error.WriteLine($"error: no completion for '{shell}': bash or zsh (e.g. `sentinel completion bash > /etc/bash_completion.d/sentinel`)");
                return 2;
        }
    }

    // The options as a shell types them (--name and -x; not the /h and -? spellings of help), --config everywhere.
    private static string Options(Command c) => string.Join(' ', c.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
        .Where(a => a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2 && a[0] == '-' && char.IsLetter(a[1]))
        .Concat(["--help", "--config"]).Distinct());

    private static string Bash(RootCommand root)
    {
        var commands = root.Subcommands.Where(c => !c.Hidden).ToList();
        var b = new StringBuilder();
        b.Append("# sentinel completion for bash (and zsh through bashcompinit): made by `sentinel completion bash`\n");
        b.Append("_sentinel() {\n");
        b.Append("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" cmd=\"\" config=\"\" i\n");
        b.Append("  for ((i=1; i<COMP_CWORD; i++)); do\n");
        b.Append("    case \"${COMP_WORDS[i]}\" in\n");
        b.Append("      --config|-c) config=\"${COMP_WORDS[i+1]}\"; ((i++));;\n");
        b.Append("      -*) ;;\n");
        b.Append("      *) [[ -z \"$cmd\" ]] && cmd=\"${COMP_WORDS[i]}\";;\n");
        b.Append("    esac\n");
        b.Append("  done\n");
        b.Append("  case \"$prev\" in --config|-c|--output|-o) COMPREPLY=($(compgen -f -- \"$cur\")); return;; esac\n");
        b.Append($"  if [[ -z \"$cmd\" ]]; then COMPREPLY=($(compgen -W \"{string.Join(' ', commands.Select(c => c.Name))} {Options(root)}\" -- \"$cur\")); return; fi\n");
        b.Append("  local names=\"\"\n");
        b.Append("  if [[ \"$cur\" != -* ]]; then\n");
        b.Append("    case \"$cmd\" in\n");
        b.Append($"      {string.Join('|', RuleCommands.Order(StringComparer.Ordinal))}) names=$(sentinel __names rules ${{config:+--config \"$config\"}} 2>/dev/null);;\n");
        b.Append("      notify-test) names=$(sentinel __names channels ${config:+--config \"$config\"} 2>/dev/null);;\n");
        b.Append("      completion) names=\"bash zsh\";;\n");
        b.Append("    esac\n");
        b.Append("  fi\n");
        b.Append("  case \"$cmd\" in\n");
        foreach (var c in commands) b.Append($"    {c.Name}) COMPREPLY=($(compgen -W \"$names {Options(c)}\" -- \"$cur\"));;\n");
        b.Append("  esac\n");
        b.Append("}\n");
        b.Append("complete -o default -F _sentinel sentinel\n");
        return b.ToString();
    }

    /// <summary>The names under rules: (main file and includes) or channels: of a config, one a line; nothing loaded but the YAML.</summary>
    public static int Names(string configPath, string what)
    {
        try
        {
            var full = Path.GetFullPath(configPath);
            var files = new List<string> { full };
            var main = Read(full);
            if (what == "rules" && main?.Children.TryGetValue(new YamlScalarNode("include"), out var include) == true && include is YamlSequenceNode patterns)
            {
                var matcher = new Matcher();
                foreach (var p in patterns.Children.OfType<YamlScalarNode>()) if (p.Value is { } v && !Path.IsPathRooted(v)) matcher.AddInclude(v);
                files.AddRange(matcher.GetResultsInFullPath(Path.GetDirectoryName(full)!).Order(StringComparer.Ordinal));
            }
            foreach (var file in files)
                if ((file == full ? main : Read(file))?.Children.TryGetValue(new YamlScalarNode(what), out var list) == true && list is YamlSequenceNode items)
                    foreach (var item in items.Children.OfType<YamlMappingNode>())
                        if (item.Children.TryGetValue(new YamlScalarNode("name"), out var n) && n is YamlScalarNode { Value: { Length: > 0 } name }) Console.WriteLine(name);
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException) { return 1; }
    }

    private static YamlMappingNode? Read(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents.Count > 0 ? stream.Documents[0].RootNode as YamlMappingNode : null;
    }

    /// <summary>sentinel(1), in roff: synopsis, every command with its arguments and options, exit codes, files, environment.</summary>
    public static int Man(RootCommand root)
    {
        static string E(string s) => s.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal).Replace("\n.", "\n\\&.", StringComparison.Ordinal);
        var b = new StringBuilder();
        b.Append($".TH SENTINEL 1 \"{DateTime.UtcNow:yyyy-MM-dd}\" \"sentinel {Sentinel.Engine.SentinelEngine.Version}\" \"Sentinel Manual\"\n");
        b.Append(".SH NAME\nsentinel \\- health checks, self\\-healing and alerting for the services on one box\n");
        b.Append(".SH SYNOPSIS\n.B sentinel\n.I command\n[\\fIoptions\\fR] [\\fB\\-\\-config\\fR \\fIFILE\\fR]\n");
        b.Append($".SH DESCRIPTION\n{E(root.Description ?? "")}\nRules in a YAML file say what to probe, how often, what to do when it fails (restart with backoff and a budget) and whom to tell (email, SMS, webhooks). \\fBsentinel run\\fR is the daemon; the other commands read or steer it.\n");
        b.Append(".SH COMMANDS\n");
        foreach (var c in root.Subcommands.Where(c => !c.Hidden))
        {
            var args = string.Join(' ', c.Arguments.Select(a => a.Arity.MinimumNumberOfValues == 0 ? $"[{a.Name}]" : a.Name));
            b.Append($".TP\n.B {E(c.Name)}{(args.Length > 0 ? " \\fI" + E(args) + "\\fR" : "")}\n{E(c.Description ?? "")}\n");
            foreach (var o in c.Options.Where(o => !o.Hidden))
                b.Append($".RS\n.TP\n.B {E(string.Join(", ", o.Aliases.Order(StringComparer.Ordinal).Append(o.Name)))}\n{E(o.Description ?? "")}\n.RE\n");
        }
        b.Append(".SH OPTIONS\n");
        foreach (var o in root.Options.Where(o => !o.Hidden))
            b.Append($".TP\n.B {E(string.Join(", ", o.Aliases.Order(StringComparer.Ordinal).Append(o.Name)))}\n{E(o.Description ?? "")}\n");
        b.Append(".SH EXIT STATUS\n.TP\n.B 0\nSuccess; for \\fBstatus\\fR and \\fBcheck\\fR: no rule is down.\n.TP\n.B 1\nA rule is down (\\fBstatus\\fR, \\fBcheck\\fR), or the running Sentinel refused or could not be reached.\n.TP\n.B 2\nAn invalid configuration, or a usage error (an unknown command, a missing or malformed argument).\n.TP\n.B 3\n\\fBstatus\\fR found nothing to read: no Sentinel answered and there is no status.json.\n");
        b.Append(".SH FILES\n.TP\n.I /etc/sentinel/sentinel.yaml\nThe configuration (default \\fIconfig/sentinel.yaml\\fR from a checkout), and \\fIrules.d/*.yaml\\fR beside it.\n.TP\n.I /var/lib/sentinel\nState: sentinel.db (rule state, incidents, the outbox), history.db, status.json, api\\-token.\n.TP\n.I /var/log/sentinel\nSentinel's log and the supervised services' output.\n");
        b.Append(".SH ENVIRONMENT\n.TP\n.B SENTINEL_CONFIG\nThe configuration file, when \\fB\\-\\-config\\fR is not given.\n.TP\n.B NO_COLOR\nNo colors in tables.\n");
        b.Append(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1);\ndocs/ in the source: configuration.md, notifications.md, remediation.md, operations.md, api.md, reliability.md.\n");
        Console.Write(b.ToString());
        return 0;
    }
}
