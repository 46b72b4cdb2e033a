using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.System;

/// <summary>
/// Runs a Nagios / Monitoring-Plugins check: exit 0 healthy, 1 degraded, 2 unhealthy, 3 or anything else
/// unhealthy ("unknown"). The first line is the description; performance data (after '|' on the first line
/// and on the lines after the first '|' in the long output) becomes Data: <c>label</c> with its value (s, ms,
/// us as durations; B, KB, MB, GB, TB as sizes; % and c as numbers) and <c>label.warn</c>, <c>.crit</c>,
/// <c>.min</c>, <c>.max</c>. Malformed perfdata is listed under <c>perfdata-errors</c>, never fatal.
/// </summary>
[ClusterWide]
internal sealed partial class NagiosProbe(NagiosProbeOptions options) : IProbe
{
    public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(options.Command[0])
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            WorkingDirectory = options.Cwd ?? "",
        };
        foreach (var a in options.Command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var (k, v) in options.Env) psi.Environment[k] = v;
        Process process;
        try { process = Process.Start(psi)!; }
        catch (Win32Exception ex)
        {
            return ProbeResult.Unhealthy($"unknown: '{options.Command[0]}' could not be started: " + (ex.NativeErrorCode == 2 ? "no such program (give a full path, or check PATH)" : ex.Message));
        }
        using (process)
        {
            process.StandardInput.Close();
            var stdout = ReadLimited(process.StandardOutput.BaseStream, options.MaxOutput.Bytes);
            var stderr = ReadLimited(process.StandardError.BaseStream, 4096);
            try { await process.WaitForExitAsync(cancellationToken); }
            catch (OperationCanceledException)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw;
            }
            var (text, truncated) = await stdout;
            var (err, _) = await stderr;
            return Interpret(process.ExitCode, text, err, truncated);
        }
    }

    private static async Task<(string Text, bool Truncated)> ReadLimited(Stream stream, long limit)
    {
        var kept = new MemoryStream();
        var buffer = new byte[16 * 1024];
        var truncated = false;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            var room = (int)Math.Max(0, Math.Min(n, limit - kept.Length));
            kept.Write(buffer, 0, room);
            truncated |= room < n;
        }
        return (Encoding.UTF8.GetString(kept.ToArray()), truncated);
    }

    internal static ProbeResult Interpret(int exit, string output, string stderr, bool truncated)
    {
        var lines = output.Replace("\r\n", "\n").Split('\n');
        var first = lines[0];
        var perf = new List<string>();
        var bar = first.IndexOf('|');
        if (bar >= 0)
        {
            perf.Add(first[(bar + 1)..]);
            first = first[..bar];
        }
        var inPerf = false;
        foreach (var line in lines.Skip(1))
        {
            if (inPerf) { perf.Add(line); continue; }
            var b = line.IndexOf('|');
            if (b >= 0) { perf.Add(line[(b + 1)..]); inPerf = true; }
        }
        var data = new Dictionary<string, object> { ["exit-code"] = exit };
        var errors = new List<string>();
        foreach (var chunk in perf) ParsePerfData(chunk, data, errors);
        if (errors.Count > 0) data["perfdata-errors"] = string.Join("; ", errors);
        if (truncated) data["output-truncated"] = true;
        var description = first.Trim();
        if (description.Length == 0) description = stderr.Trim() is { Length: > 0 } e ? e.Split('\n')[0] : "(no output)";
        return exit switch
        {
            0 => ProbeResult.Healthy(description, data),
            1 => new ProbeResult(ProbeStatus.Degraded, description, null, data),
            2 => ProbeResult.Unhealthy(description, null, data),
            _ => ProbeResult.Unhealthy($"unknown (exit {exit}): {description}", null, data),
        };
    }

    internal static void ParsePerfData(string text, Dictionary<string, object> data, List<string> errors)
    {
        foreach (Match m in PerfItem().Matches(text))
        {
            var label = m.Groups["label"].Value;
            if (label.StartsWith('\'')) label = label[1..^1].Replace("''", "'");
            var fields = m.Groups["rest"].Value.Split(';');
            if (!TryValue(fields[0], out var value))
            {
                errors.Add($"'{m.Value}': the value is not a number with a unit");
                continue;
            }
            data[label] = value;
            string[] names = ["warn", "crit", "min", "max"];
            // Thresholds are numbers (or with a unit, typed like values); a range such as 10:20 or @~:5 is kept as text.
            for (var i = 1; i < fields.Length && i <= 4; i++)
                if (fields[i].Length > 0)
                    data[$"{label}.{names[i - 1]}"] = TryValue(fields[i], out var threshold) ? threshold : fields[i];
        }
        var rest = PerfItem().Replace(text, "").Trim();
        if (rest.Length > 0) errors.Add($"'{(rest.Length > 60 ? rest[..60] + "..." : rest)}' is not label=value");
    }

    private static bool TryValue(string text, out object value)
    {
        value = 0;
        var m = PerfValue().Match(text);
        if (!m.Success) return false;
        var number = double.Parse(m.Groups["n"].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
        value = m.Groups["u"].Value switch
        {
            "s" => TimeSpan.FromSeconds(number),
            "ms" => TimeSpan.FromMilliseconds(number),
            "us" => TimeSpan.FromMicroseconds(number),
            "B" => new ByteSize((long)number),
            "KB" => new ByteSize((long)(number * 1024)),
            "MB" => new ByteSize((long)(number * 1024 * 1024)),
            "GB" => new ByteSize((long)(number * 1024 * 1024 * 1024)),
            "TB" => new ByteSize((long)(number * 1024 * 1024 * 1024 * 1024)),
            _ => number,
        };
        return true;
    }

    [GeneratedRegex(@"(?<label>'(?:[^']|'')+'|[^\s=']+)=(?<rest>\S*)")]
    private static partial Regex PerfItem();

    [GeneratedRegex(@"^(?<n>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?<u>s|ms|us|%|B|KB|MB|GB|TB|c)?$")]
    private static partial Regex PerfValue();
}
