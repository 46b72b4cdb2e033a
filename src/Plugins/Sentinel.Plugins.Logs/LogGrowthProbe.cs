using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Logs;

internal sealed class LogGrowthProbe(LogGrowthProbeOptions options) : IProbe
{
    private long? _lastSize;
    private DateTimeOffset _lastActivity;

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var now = context.TimeProvider.GetUtcNow();
        var file = new FileInfo(options.Path!);
        if (!file.Exists)
        {
            _lastSize = null;
            return ValueTask.FromResult(ProbeResult.Unhealthy($"missing: {file.FullName} does not exist", null,
                new Dictionary<string, object> { ["missing"] = true }));
        }
        var size = file.Length;
        long grown;
        if (_lastSize is not { } last)
        {
            // First sight: the file's own last write tells how long it has been quiet.
            grown = 0;
            _lastActivity = new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero) is var written && written < now ? written : now;
        }
        else if (size < last)
        {
            // Rotated (copy-truncate, or rename-and-create): whatever the new file holds was written since.
            grown = size;
            if (grown > 0) _lastActivity = now;
        }
        else
        {
            grown = size - last;
            if (grown > 0) _lastActivity = now;
        }
        _lastSize = size;
        var silence = now - _lastActivity;
        var data = new Dictionary<string, object>
        {
            ["size"] = new ByteSize(size),
            ["grown"] = new ByteSize(grown),
            ["silence"] = silence,
        };
        return ValueTask.FromResult(silence > options.MaxSilence
            ? ProbeResult.Unhealthy($"{file.Name} has not grown for {PluginText.Duration(silence)} (max-silence {PluginText.Duration(options.MaxSilence)}): is the service hung?", null, data)
            : ProbeResult.Healthy(grown > 0 ? $"{file.Name} grew by {new ByteSize(grown)}" : $"{file.Name} quiet for {PluginText.Duration(silence)}", data));
    }

}
