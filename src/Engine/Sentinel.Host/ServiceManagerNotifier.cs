using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Sentinel.Engine;

namespace Sentinel.Host;

/// <summary>
/// systemd integration for <c>Type=notify</c> units: READY=1 once the engine runs, STOPPING=1 on shutdown, and
/// WATCHDOG=1 keep-alives at half of <c>WatchdogSec</c> — sent only while the scheduler is really running rules,
/// so systemd restarts a hung Sentinel. Does nothing when NOTIFY_SOCKET is not set (not under systemd).
/// </summary>
internal sealed partial class ServiceManagerNotifier(SentinelEngine engine, IHostApplicationLifetime lifetime, ILogger<ServiceManagerNotifier> logger) : BackgroundService
{
    private readonly SystemdNotifier _notifier = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_notifier.IsEnabled) return;
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            await started.Task.WaitAsync(stoppingToken);
        _notifier.Notify(new ServiceState($"READY=1\nSTATUS=Sentinel {SentinelEngine.Version}: {engine.Config.Rules.Count} rules\nMAINPID={Environment.ProcessId}"));
        LogReady(logger);
        if (!long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec <= 0) return;
        var every = TimeSpan.FromMicroseconds(usec / 2.0);
        using var timer = new PeriodicTimer(every);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (engine.SchedulerAlive) _notifier.Notify(new ServiceState("WATCHDOG=1"));
            else LogWatchdogWithheld(logger);
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        if (_notifier.IsEnabled) _notifier.Notify(ServiceState.Stopping);
        return base.StopAsync(cancellationToken);
    }

    [LoggerMessage(EventId = 800, Level = LogLevel.Information, Message = "Told systemd: READY=1")]
    private static partial void LogReady(ILogger logger);

    [LoggerMessage(EventId = 801, Level = LogLevel.Warning, Message = "The scheduler is not running rules: the systemd watchdog keep-alive is withheld")]
    private static partial void LogWatchdogWithheld(ILogger logger);
}
