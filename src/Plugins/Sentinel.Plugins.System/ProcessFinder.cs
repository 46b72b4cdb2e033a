using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.RegularExpressions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.System;

/// <summary>How a probe's options name processes: by pidfile, command-line regex, or name.</summary>
internal interface IProcessSelector
{
    string? Pidfile { get; }
    string? Match { get; }
    string? Name { get; }
}

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

    public string Describe() => selector.Pidfile is not null ? $"pidfile {selector.Pidfile}" : selector.Name is not null ? $"name '{selector.Name}'" : $"match '{selector.Match}'";

    /// <summary>The live processes selected, oldest first; null with the reason when the pidfile itself says why not.</summary>
    public List<ProcInfo>? Find(CancellationToken cancellationToken, out string problem)
    {
        var found = selector.Pidfile is not null ? FromPidfile(out problem) : Scan(cancellationToken, out problem);
        found?.Sort((a, b) => a.StartTime.CompareTo(b.StartTime));
        return found;
    }

    public static IEnumerable<ValidationResult> Validate(IProcessSelector s, bool required)
    {
        var given = new[] { s.Pidfile, s.Name }.Count(v => !string.IsNullOrWhiteSpace(v));
        if (required && given == 0 && string.IsNullOrWhiteSpace(s.Match))
            yield return new ValidationResult("say which process: set pidfile, match or name");
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

    private List<ProcInfo> Scan(CancellationToken cancellationToken, out string problem)
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
            if (selector.Name is not null && info.Comm != selector.Name && info.ExeName != selector.Name
                && Path.GetFileName(info.CommandLine.Split(' ')[0]) != selector.Name) continue;
            if (_match is not null && !_match.IsMatch(info.CommandLine)) continue;
            result.Add(info);
        }
        return result;
    }

    public static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 3)] + "...";
}
