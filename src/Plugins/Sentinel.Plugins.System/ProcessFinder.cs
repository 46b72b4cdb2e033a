using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.System;

/// <summary>How a probe's options name processes: by pidfile, command-line regex, or name.</summary>
internal interface IProcessSelector
{
    string? Pidfile { get; }
    string? Match { get; }
    string? Name { get; }
    ProcessScope? Of { get; }
}

/// <summary>Where a process or memory probe looks for its processes.</summary>
public enum ProcessScope
{
    /// <summary>The rule's supervised service: its main process and everything in its session (the default on a rule with supervise:).</summary>
    Service,

    /// <summary>Every process on the box (the default on a rule that supervises nothing).</summary>
    System,
}

/// <summary>Where to look this check: in a session (the service's), everywhere, or nowhere with a result to give instead.</summary>
internal readonly record struct ProcessScopeChoice(int? Session, ProbeResult? Instead);

/// <summary>
/// Finds the processes an <see cref="IProcessSelector"/> names. A zombie is not alive; a pidfile whose PID
/// belongs to another program (command line not matching, or started after the pidfile was written) is
/// a process that is not running.
/// </summary>
internal sealed class ProcessFinder(IProcessSelector selector)
{
    // /proc start times come from a whole-second boot time and clock ticks: allow for that before calling a PID reused.
    private static readonly TimeSpan StartTimeSlack = TimeSpan.FromSeconds(2);

    private readonly Regex? _match = selector.Match is null ? null : new Regex(selector.Match, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>True when the options name processes (pidfile, match or name); a scope of service alone names the service's.</summary>
    public bool Selects => (selector.Pidfile ?? selector.Match ?? selector.Name) is not null;

    public string Describe(int? session = null)
    {
        var what = selector.Pidfile is not null ? $"pidfile {selector.Pidfile}" : selector.Name is not null ? $"name '{selector.Name}'" : selector.Match is not null ? $"match '{selector.Match}'" : null;
        if (session is null) return what ?? "(no selector)";
        return what is null ? $"the service (pid {session})" : $"{what} in the service (pid {session})";
    }

    /// <summary>
    /// The scope of this check. On a supervised rule (unless of: system) the probe looks only at the service Sentinel
    /// runs: the supervisor's current PID and its session, so a second copy of the bot elsewhere on the box is not
    /// counted; while Sentinel is restarting the service the check is degraded, not failed.
    /// </summary>
    public ProcessScopeChoice Scope(ProbeContext context)
    {
        var scope = selector.Of ?? (context.Service is null ? ProcessScope.System : ProcessScope.Service);
        if (scope == ProcessScope.System) return new(null, null);
        if (context.Service is not { } service)
            return new(null, ProbeResult.Unhealthy("of: service: this rule supervises nothing (add a supervise: block, or use of: system)"));
        if (service.Pid is { } pid) return new(pid, null);
        return new(null, service.Restarting
            ? ProbeResult.Degraded("the service is being restarted by Sentinel", new Dictionary<string, object> { ["count"] = 0, ["restarting"] = true })
            : ProbeResult.Unhealthy("the service is not running", null, new Dictionary<string, object> { ["count"] = 0, ["restarting"] = false }));
    }

    /// <summary>The live processes selected, oldest first; null with the reason when the pidfile itself says why not.
    /// With <paramref name="session"/>, only processes of that session (a supervised service's) count.</summary>
    public List<ProcInfo>? Find(CancellationToken cancellationToken, out string problem, int? session = null)
    {
        var found = selector.Pidfile is not null ? FromPidfile(out problem) : Scan(cancellationToken, out problem, session);
        if (session is { } sid && found is not null && selector.Pidfile is not null && found.Any(p => p.Session != sid))
        {
            problem = $"pid {found[0].Pid} from {selector.Pidfile} is not part of the service Sentinel runs (pid {sid}): another copy? (use of: system to look beyond the service)";
            return null;
        }
        found?.Sort((a, b) => a.StartTime.CompareTo(b.StartTime));
        return found;
    }

    public static IEnumerable<ValidationResult> Validate(IProcessSelector s, bool required, ValidationContext context)
    {
        var given = new[] { s.Pidfile, s.Name }.Count(v => !string.IsNullOrWhiteSpace(v));
        // The engine says whether the rule supervises a service; elsewhere (the conformance kit) it is not known.
        var known = context.Items.TryGetValue(ValidationKeys.Supervised, out var flag);
        var supervised = flag is true;
        if (s.Of == ProcessScope.Service && known && !supervised)
            yield return new ValidationResult("of: service needs a rule with a supervise: block (or use of: system)", [nameof(s.Of)]);
        if (required && given == 0 && string.IsNullOrWhiteSpace(s.Match) && !(supervised && s.Of != ProcessScope.System) && s.Of != ProcessScope.Service)
            yield return new ValidationResult("say which process: set pidfile, match or name (on a rule with supervise:, the service's own processes are the default)");
        if (given == 2)
            yield return new ValidationResult("set pidfile or name, not both (match may be added to either, to check the command line)", [nameof(s.Name)]);
        if (PluginText.RegexError(s.Match) is { } error)
            yield return new ValidationResult($"match is not a valid regular expression: {error}", [nameof(s.Match)]);
    }

    private List<ProcInfo>? FromPidfile(out string problem)
    {
        problem = "";
        var pidfile = selector.Pidfile!;
        string text;
        if (FileKind.NotRegular(pidfile) is { } why)
        {
            problem = $"pidfile {pidfile} {why}";
            return null;
        }
        try { text = File.ReadAllText(pidfile); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            problem = $"pidfile {pidfile} does not exist: the process is not running (or writes its pidfile elsewhere)";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"pidfile {pidfile} cannot be read: {e.Message}";
            return null;
        }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            problem = $"pidfile {pidfile} does not hold a PID (it holds '{Shorten(text.Trim(), 40)}')";
            return null;
        }
        var info = ProcFs.Read(pid);
        if (info is null) return [];
        if (info.IsZombie)
        {
            problem = $"pid {pid} from {pidfile} is a zombie: it exited and its parent has not reaped it";
            return null;
        }
        if (_match is not null && !_match.IsMatch(info.CommandLine))
        {
            problem = $"pid {pid} from {pidfile} now belongs to another program ('{Shorten(info.CommandLine, 80)}' does not match '{selector.Match}'): the process is not running";
            return null;
        }
        var written = File.GetLastWriteTimeUtc(pidfile);
        if (info.StartTime > written + StartTimeSlack)
        {
            problem = $"pid {pid} from {pidfile} belongs to a process started {info.StartTime:u}, after the pidfile was written ({written:u}): the PID was reused, the process is not running";
            return null;
        }
        return [info];
    }

    private List<ProcInfo> Scan(CancellationToken cancellationToken, out string problem, int? session)
    {
        problem = "";
        var self = Environment.ProcessId;
        var result = new List<ProcInfo>();
        foreach (var pid in ProcFs.Pids())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (pid == self) continue;
            var info = ProcFs.Read(pid);
            if (info is null || info.IsZombie) continue;
            if (session is { } sid && info.Session != sid) continue;
            if (selector.Name is not null && info.Comm != selector.Name && info.ExeName != selector.Name
                && Path.GetFileName(info.CommandLine.Split(' ')[0]) != selector.Name) continue;
            if (_match is not null && !_match.IsMatch(info.CommandLine)) continue;
            result.Add(info);
        }
        return result;
    }

    public static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 3)] + "...";
}
