using System.ComponentModel;
using System.Diagnostics;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.System;

/// <summary>
/// Runs a command (an argv list; a shell only when asked) and fails on a non-zero exit or a timeout. Output is
/// streamed into the action's output, so the last lines reach the event and the alert even when it hangs.
/// </summary>
internal sealed class ExecAction(ExecActionOptions options) : IAction
{
    // After the command exits, its output is read this much longer: a daemon it started may hold the pipe open.
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(1);

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var output = context.Output;
        var psi = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = options.Cwd ?? "",
        };
        if (options.Shell)
        {
            psi.FileName = "/bin/sh";
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(options.Command[0]);
        }
        else
        {
            psi.FileName = options.Command[0];
            foreach (var arg in options.Command.Skip(1)) psi.ArgumentList.Add(arg);
        }
        foreach (var (k, v) in options.Env) psi.Environment[k] = v;
        psi.Environment["SENTINEL_RULE"] = context.RuleName;
        psi.Environment["SENTINEL_EVENT"] = context.Event;
        psi.Environment["SENTINEL_ATTEMPT"] = context.Attempt.ToString(global::System.Globalization.CultureInfo.InvariantCulture);

        var display = Describe();
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"{display} could not be started");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException(ex.NativeErrorCode == 2
                ? $"{display} could not be started: '{psi.FileName}' was not found (give a full path, or check PATH)"
                : $"{display} could not be started: {ex.Message}", ex);
        }
        using (process)
        {
            process.StandardInput.Close();
            var readers = Task.WhenAll(Pump(process.StandardOutput, "", output), Pump(process.StandardError, "[stderr] ", output));
            using var timeout = new CancellationTokenSource(options.Timeout, context.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
            try
            {
                await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                await Task.WhenAny(readers, Task.Delay(DrainGrace, context.TimeProvider, CancellationToken.None)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"{display} did not finish within {PluginText.Duration(options.Timeout)}: it was killed" + Last(output));
            }
            await Task.WhenAny(readers, Task.Delay(DrainGrace, context.TimeProvider, CancellationToken.None)).ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{display} exited with code {process.ExitCode}" + Last(output));
        }
    }

    private string Describe()
    {
        var text = options.Shell ? "sh -c " + options.Command[0] : string.Join(' ', options.Command.Select(a => a.Contains(' ') || a.Length == 0 ? $"'{a}'" : a));
        return $"'{ProcessFinder.Shorten(text, 80)}'";
    }

    private static string Last(ActionOutput output) => output.Lines.Count > 0 ? $": {output.Lines[^1]}" : "";

    private static async Task Pump(StreamReader reader, string prefix, ActionOutput output)
    {
        try
        {
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line) output.WriteLine(prefix + line);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException) { }
    }
}
