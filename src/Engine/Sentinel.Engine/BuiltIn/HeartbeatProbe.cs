using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

using Sentinel.Engine.Heartbeat;

namespace Sentinel.Engine.BuiltIn;

internal sealed partial class HeartbeatProbeOptions : IValidatableObject
{
    [Required, Description("The check's key in ping URLs: a UUID (/ping/<uuid>) or ping-key/slug (/ping/<ping-key>/<slug>).")]
    public string? Key { get; set; }

    [Description("A ping is expected at least this often; or give cron.")]
    public TimeSpan? Period { get; set; }

    [Description("A ping is expected at each of these times (5-field cron, UTC).")]
    public string? Cron { get; set; }

    [Description("How late a ping may be; also how long a /start may run without finishing.")]
    public TimeSpan Grace { get; set; } = TimeSpan.FromMinutes(1);

    [Description("A check that was never pinged: alert (down once a period plus grace have passed since the rule was created) or wait (healthchecks.io's \"new\" state: healthy until the first ping).")]
    public NeverPinged NeverPinged { get; set; } = NeverPinged.Alert;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if ((Period is null) == (Cron is null)) yield return new("set period (e.g. 5m) or cron (e.g. \"0 3 * * *\"), one of them", [nameof(Period)]);
        if (Key is not null && !Guid.TryParse(Key, out _) && !SlugKey().IsMatch(Key))
            yield return new($"key '{Key}' is neither a UUID nor ping-key/slug (a ping key of 22+ characters, a slug of a-z, 0-9, - and _); "
                + "use an unguessable key, e.g. a UUID from `uuidgen`", [nameof(Key)]);
        if (Cron is not null && !CronText.TryToQuartz(Cron, out _, out var error)) yield return new($"cron: {error}", [nameof(Cron)]);
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{22,}/[a-z0-9_-]+$")]
    private static partial Regex SlugKey();
}

/// <summary>What a heartbeat rule does while its check has never been pinged.</summary>
internal enum NeverPinged
{
    /// <summary>Down once a period (or the first cron time) plus grace have passed since the rule was created.</summary>
    Alert,

    /// <summary>Healthy ("new") until the first ping, as healthchecks.io's new checks.</summary>
    Wait,
}

/// <summary>
/// Expects pings on Sentinel's own endpoint (<c>/ping/{key}</c>) for a job or a bot: down when the ping is
/// late (period or cron, plus grace), when a <c>/start</c> did not finish within grace, or when the job
/// reported failure (<c>/fail</c>, a non-zero exit status). Data: <c>last-ping</c> (age), <c>duration</c>, <c>pings</c>.
/// </summary>
[ReportsEvents]
[ClusterWide] // its pings are shared by the nodes of a cluster: any node may judge them
internal sealed class HeartbeatProbe : IProbe
{
    private readonly HeartbeatProbeOptions _options;
    private readonly PingRegistry _registry;
    private readonly TimeProvider _time;
    private readonly DateTimeOffset _since;
    private readonly Quartz.CronExpression? _cron;

    public HeartbeatProbe(HeartbeatProbeOptions options, PingRegistry registry, TimeProvider time)
    {
        _options = options;
        _registry = registry;
        _time = time;
        _since = time.GetUtcNow();
        if (options.Cron is not null && CronText.TryToQuartz(options.Cron, out var q, out _)) _cron = new Quartz.CronExpression(q, TimeZoneInfo.Utc);
        registry.Register(options.Key!);
    }

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var r = _registry.Get(_options.Key!) ?? new PingRecord();
        var memory = Remember(context.State, r);
        var (lastSuccess, lastFail) = (memory.LastSuccess, memory.LastFail);
        var data = new Dictionary<string, object> { ["pings"] = r.Pings };
        if (lastSuccess is { } ls) data["last-ping"] = now - ls;
        if (r.LastDuration is { } d) data["duration"] = d;
        string Ago(DateTimeOffset t) => Duration.Format(TimeSpan.FromSeconds(Math.Max(0, Math.Floor((now - t).TotalSeconds)))) + " ago";

        if (r.LastStart is { } start && now - start > _options.Grace)
            return Result(ProbeResult.Unhealthy($"started {Ago(start)} and not finished within the grace of {Duration.Format(_options.Grace)}", null, data));
        if (lastFail is { } fail && (lastSuccess is null || fail >= lastSuccess))
            return Result(ProbeResult.Unhealthy($"the job reported failure {Ago(fail)}" + (r.LastExitCode is { } c and not 0 ? $" (exit status {c})" : "")
                + (r.LastBody is { Length: > 0 } b ? $": {Cut(b)}" : ""), null, data));
        if (lastSuccess is null && _options.NeverPinged == NeverPinged.Wait)
            return Result(ProbeResult.Healthy($"new: never pinged since the rule was created {Ago(memory.Since)} (never-pinged: wait)", data));
        var reference = lastSuccess ?? memory.Since;
        DateTimeOffset? due = _options.Period is { } period ? reference + period : _cron?.GetNextValidTimeAfter(reference);
        if (due is { } expected && now > expected + _options.Grace)
            return Result(ProbeResult.Unhealthy(lastSuccess is null
                ? $"never pinged: the rule was created {Ago(memory.Since)}, and a ping was expected by {expected:u} (+{Duration.Format(_options.Grace)} grace)"
                : $"the last ping was {Ago(lastSuccess.Value)}; the next was expected by {expected:u} (+{Duration.Format(_options.Grace)} grace)", null, data));
        return Result(ProbeResult.Healthy(lastSuccess is { } s ? $"last ping {Ago(s)}" + (r.LastDuration is { } dur ? $", run took {Duration.Format(dur)}" : "")
            : due is { } first ? $"new: waiting for the first ping, expected by {first:u} (+{Duration.Format(_options.Grace)} grace)" : "new: waiting for the first ping", data));
    }

    private readonly record struct Memory(DateTimeOffset Since, DateTimeOffset? LastSuccess, DateTimeOffset? LastFail);

    // Pings are heard in memory; what they established is kept in the rule's probe state, so a Sentinel restart
    // neither forgets a failure nor restarts the clock of a check that stopped pinging (or was never pinged).
    private Memory Remember(IProbeState state, PingRecord r)
    {
        if (state.Get("key") != _options.Key)
        {
            state.Set("key", _options.Key);
            state.Set("since", null);
            state.Set("last-ping", null);
            state.Set("last-fail", null);
        }
        var since = Read("since") ?? _since;
        var lastSuccess = Later(r.LastSuccess, Read("last-ping"));
        var lastFail = Later(r.LastFail, Read("last-fail"));
        Write("since", since);
        Write("last-ping", lastSuccess);
        Write("last-fail", lastFail);
        return new Memory(since, lastSuccess, lastFail);

        DateTimeOffset? Read(string key) => DateTimeOffset.TryParse(state.Get(key), System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.RoundtripKind, out var t) ? t : null;
        void Write(string key, DateTimeOffset? t) => state.Set(key, t?.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        static DateTimeOffset? Later(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a > b ? a : b;
    }

    private static ValueTask<ProbeResult> Result(ProbeResult r) => ValueTask.FromResult(r);

    private static string Cut(string s) => s.Length <= 200 ? s.Trim() : s[..197].Trim() + "...";
}
