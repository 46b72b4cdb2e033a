using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Tests.Support;

/// <summary>In-process probes that let tests script outcomes, registered as a built-in plugin.</summary>
public sealed class TestProbesPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<ScriptedProbe, ScriptedOptions>("scripted", "Returns what the test scripted for its key.");
        registrar.AddProbe<HangingProbe, HangingOptions>("hang", "Never returns and ignores cancellation.");
        registrar.AddProbe<SlowProbe, SlowOptions>("slow", "Waits, honouring cancellation.");
        registrar.AddProbe<ThrowingProbe, ThrowingOptions>("throw", "Throws.");
        registrar.AddProbe<StatefulProbe, StatefulOptions>("stateful", "Counts its runs in its durable state.");
        registrar.AddAction<RecordingAction, RecordingOptions>("record", "Records each run (attempt numbers) under its key; fails when told.");
        registrar.AddAction<TestChannel, TestChannelOptions>("test-channel", "Records each notification under its key; fails (transiently or permanently) when scripted.");
    }
}

public sealed class ScriptedOptions
{
    [Required] public string? Key { get; set; }
    public bool Healthy { get; set; } = true;
    public int Value { get; set; }
    public TimeSpan Delay { get; set; }
    [Range(1, 10)] public int Level { get; set; } = 1;
    /// <summary>A double under an int range, as plugins write it: RangeAttribute converts the value to int.</summary>
    [Range(0, 100)] public double? Percent { get; set; }
    public Sentinel.Abstractions.ByteSize Size { get; set; }
    public List<string> Tags { get; set; } = [];
    [FilePath] public string? File { get; set; }
    /// <summary>The description to report instead of "scripted ok" / "scripted failure".</summary>
    public string? Say { get; set; }
    [Sentinel.Abstractions.Secret] public string? Password { get; set; }
}

/// <summary>Healthy or not as <see cref="Script"/> says for its key (else as its options say); counts its runs and overlaps.</summary>
public sealed class ScriptedProbe(ScriptedOptions options) : IProbe
{
    public static readonly ConcurrentDictionary<string, bool> Script = new();
    public static readonly ConcurrentDictionary<string, int> Runs = new();
    public static readonly ConcurrentDictionary<string, int> Running = new();
    public static readonly ConcurrentDictionary<string, int> MaxOverlap = new();

    public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var key = options.Key!;
        var now = Running.AddOrUpdate(key, 1, (_, v) => v + 1);
        MaxOverlap.AddOrUpdate(key, now, (_, v) => Math.Max(v, now));
        try
        {
            if (options.Delay > TimeSpan.Zero) await Task.Delay(options.Delay, context.TimeProvider, cancellationToken);
            var runs = Runs.AddOrUpdate(key, 1, (_, v) => v + 1);
            var healthy = Script.TryGetValue(key, out var scripted) ? scripted : options.Healthy;
            var data = new Dictionary<string, object> { ["runs"] = runs, ["value"] = options.Value, ["rule"] = context.RuleName };
            return healthy ? ProbeResult.Healthy(options.Say ?? "scripted ok", data) : ProbeResult.Unhealthy(options.Say ?? "scripted failure", null, data);
        }
        finally { Running.AddOrUpdate(key, 0, (_, v) => v - 1); }
    }
}

public sealed class HangingOptions;

public sealed class HangingProbe : IProbe
{
    public static int Started;
    public static readonly ManualResetEventSlim Release = new(false);

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Started);
        Release.Wait(); // blocks a thread and ignores cancellation: the worst a plugin can do
        return ValueTask.FromResult(ProbeResult.Healthy("released"));
    }
}

public sealed class SlowOptions
{
    public TimeSpan Delay { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>Report a cancellation as a failed check instead of throwing (as an HTTP probe reports a cancelled request).</summary>
    public bool SwallowCancel { get; set; }
    public string? Key { get; set; }
}

public sealed class SlowProbe(SlowOptions options) : IProbe
{
    public static System.Collections.Concurrent.ConcurrentDictionary<string, bool> Started { get; } = new();

    public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (options.Key is { } key) Started[key] = true;
        try { await Task.Delay(options.Delay, context.TimeProvider, cancellationToken); }
        catch (OperationCanceledException) when (options.SwallowCancel) { return ProbeResult.Unhealthy("request cancelled"); }
        return ProbeResult.Healthy("finally");
    }
}

public sealed class ThrowingOptions
{
    public string Message { get; set; } = "boom";
}

public sealed class ThrowingProbe(ThrowingOptions options) : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
        => throw new InvalidOperationException(options.Message);
}

public sealed class StatefulOptions;

/// <summary>Counts its runs in <see cref="ProbeContext.State"/>, which the engine keeps across restarts.</summary>
public sealed class StatefulProbe : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var count = int.Parse(context.State.Get("count") ?? "0") + 1;
        context.State.Set("count", count.ToString());
        return ValueTask.FromResult(ProbeResult.Healthy($"run {count}", new Dictionary<string, object> { ["count"] = count }));
    }
}

public sealed class RecordingOptions
{
    [Required] public string? Key { get; set; }
    public bool Fail { get; set; }
}

/// <summary>Records the attempt number of each run under its key, writes a line of output, and throws when <see cref="RecordingOptions.Fail"/>.</summary>
public sealed class RecordingAction(RecordingOptions options) : IAction
{
    public static readonly ConcurrentDictionary<string, ConcurrentQueue<int>> Runs = new();

    public static IReadOnlyList<int> Of(string key) => Runs.TryGetValue(key, out var q) ? q.ToArray() : [];

    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        Runs.GetOrAdd(options.Key!, _ => new()).Enqueue(context.Attempt);
        context.Output.WriteLine($"recorded attempt {context.Attempt} for {context.RuleName}");
        if (options.Fail) throw new InvalidOperationException("told to fail");
        return ValueTask.CompletedTask;
    }
}

public sealed class TestChannelOptions
{
    [Required] public string? Key { get; set; }
}

public enum ChannelScript { Accept, FailTransient, FailPermanent }

/// <summary>A notification channel that records what it accepted, under its key, and fails as <see cref="Script"/> says.</summary>
public sealed class TestChannel(TestChannelOptions options) : IAction
{
    public static readonly ConcurrentDictionary<string, ConcurrentQueue<Notification>> Accepted = new();
    public static readonly ConcurrentDictionary<string, int> Attempts = new();
    public static readonly ConcurrentDictionary<string, ChannelScript> Script = new();
    /// <summary>A slow channel: the message arrives (it is recorded), and the answer waits for this task (or the stop).</summary>
    public static readonly ConcurrentDictionary<string, TaskCompletionSource> Holds = new();

    public static IReadOnlyList<Notification> Of(string key) => Accepted.TryGetValue(key, out var q) ? q.ToArray() : [];

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        Attempts.AddOrUpdate(options.Key!, 1, (_, v) => v + 1);
        switch (Script.GetValueOrDefault(options.Key!))
        {
            case ChannelScript.FailTransient: throw new InvalidOperationException("scripted transient failure");
            case ChannelScript.FailPermanent: throw new ActionFailedException("scripted permanent failure", permanent: true);
        }
        Accepted.GetOrAdd(options.Key!, _ => new()).Enqueue(context.Notification!);
        if (Holds.TryGetValue(options.Key!, out var hold)) await hold.Task.WaitAsync(cancellationToken);
    }
}
