using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sentinel.Engine;
using Sentinel.Engine.Api;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Model;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;
using Serilog;
using Serilog.Events;
using Serilog.Extensions.Logging;

namespace Sentinel.Host;

/// <summary>`sentinel run`: the engine under the Generic Host, with Kestrel for /health and /api/status.</summary>
internal static class RunCommand
{
    public static async Task<int> ExecuteAsync(string configPath, CancellationToken cancellationToken)
    {
        var loader = new ConfigLoader();
        if (Bootstrap.LoadEngine(loader, configPath) is not { } settings) return Bootstrap.ExitConfigInvalid;
        if (Refusal(settings) is { } refused)
        {
            Console.Error.WriteLine(refused);
            return Bootstrap.ExitConfigInvalid;
        }

        // One engine per state folder, taken before anything is written: a second `sentinel run` on the same state
        // must not adopt the first one's services, write its files or stop its services on exit.
        using var stateLock = StateFolderLock.TryAcquire(settings.StateDirectory, out var heldBy);
        if (stateLock is null)
        {
            Console.Error.WriteLine($"error: {heldBy} uses {settings.StateDirectory}: only one Sentinel may run on a state folder. "
                + "Stop it first (read-only commands such as `sentinel status` work beside it), or give this one its own engine.state.");
            return 1;
        }

        await using var serilog = CreateLogger(settings);
        using var serilogFactory = new SerilogLoggerFactory(serilog, dispose: false);
        // Every log line passes the redactor: a secret echoed by a probe, a plugin or an error is *** in the log too.
        var loggerFactory = new Sentinel.Engine.Api.RedactingLoggerFactory(serilogFactory);
        var log = loggerFactory.CreateLogger("Sentinel.Host");
        var catalog = Bootstrap.LoadPlugins(settings, loggerFactory);
        // A rule whose plugin is not installed yet waits for it (the engine logs it and shows it as waiting).
        var result = loader.Load(configPath, catalog, allowMissingPlugins: true);
        if (!result.IsValid)
        {
            foreach (var e in result.Errors) log.LogError("{Error}", e.ToString());
            Bootstrap.PrintErrors(result.Errors);
            if (result.Heartbeat is { To.Count: > 0 } heartbeat)
            {
                // The outside switch hears why Sentinel is not running, instead of only noticing the silence later.
                var secrets = Sentinel.Engine.Api.Redactor.Of(heartbeat.To.SelectMany(a => Sentinel.Engine.Api.Redactor.SecretValues(a.Options)));
                loggerFactory.Redactor = () => secrets;
                var factory = new Sentinel.Engine.Plugins.PluginActivator(loggerFactory, TimeProvider.System);
                var targets = heartbeat.To.Select(a => factory.CreateAction("engine.heartbeat", a)).ToList();
                await Sentinel.Engine.Heartbeat.HeartbeatSender.FailAsync(targets, $"Sentinel did not start: the configuration is invalid ({result.Errors.Count} errors):\n"
                    + string.Join("\n", result.Errors), TimeProvider.System, log, TimeSpan.FromSeconds(10));
            }
            catalog.Dispose();
            return Bootstrap.ExitConfigInvalid;
        }

        IEngineStore store;
        Sentinel.Engine.History.IHistoryStore? history;
        try
        {
            store = settings.Cluster is { } cluster
                ? await PostgresStateStore.OpenAsync(cluster.ConnectionString, cluster.Node, cancellationToken)
                : SqliteStateStore.Open(Path.Combine(settings.StateDirectory, "sentinel.db"), loggerFactory.CreateLogger("Sentinel.State"));
        }
        catch (Exception ex) when (ex is StateFileUnavailableException or SchemaTooNewException)
        {
            log.LogCritical("Cannot start: {Reason}", ex.Message);
            catalog.Dispose();
            return 1;
        }
        catch (Exception ex) when (IsDatabaseError(ex) || ex is SocketException or TimeoutException)
        {
            log.LogCritical("Cannot start: the cluster's PostgreSQL ({Server}) cannot be used: {Reason}. Check engine.cluster.postgres and that the server is up.",
                ClusterServer(settings.Cluster!.ConnectionString), ex.Message);
            catalog.Dispose();
            return 1;
        }
        try
        {
            // In a cluster, in the shared database (migrated by the state store above): a rule's history and uptime
            // are the whole cluster's, wherever it ran.
            history = !settings.History.Enabled ? null
                : settings.Cluster is { } cluster ? Sentinel.Engine.History.PostgresHistoryStore.Open(cluster.ConnectionString, cluster.Node)
                : Sentinel.Engine.History.SqliteHistoryStore.Open(Path.Combine(settings.StateDirectory, "history.db"), loggerFactory.CreateLogger("Sentinel.History"));
        }
        catch (StateFileUnavailableException ex)
        {
            log.LogCritical("Cannot start: {Reason}", ex.Message);
            await store.DisposeAsync();
            catalog.Dispose();
            return 1;
        }
        string? token = null;
        if (settings.HttpEnabled)
        {
            try
            {
                token = store is PostgresStateStore shared
                    ? await EngineApi.ResolveClusterTokenAsync(settings, shared.SharedApiTokenAsync, cancellationToken)
                    : EngineApi.ResolveOrCreateToken(settings);
            }
            catch (Exception ex) when (IsDatabaseError(ex))
            {
                log.LogCritical("Cannot start: the cluster's API token cannot be read from its PostgreSQL ({Server}): {Reason}", ClusterServer(settings.Cluster!.ConnectionString), ex.Message);
                await store.DisposeAsync();
                if (history is not null) await history.DisposeAsync();
                catalog.Dispose();
                return 1;
            }
        }
        var engine = new SentinelEngine(result.Config!, catalog, store, loggerFactory, loader: loader, history: history) { ApiToken = token };
        loggerFactory.Redactor = () => engine.Redactor;
        var stopping = CancellationToken.None; // the host's: cancelled by SIGTERM and Ctrl+C
        try
        {
            var app = BuildHost(settings, engine, serilog);
            stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            await app.RunAsync(cancellationToken);
            return 0;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || stopping.IsCancellationRequested)
        {
            // SIGTERM (or Ctrl+C) before the host had finished starting (Kestrel still binding): a clean stop, not a
            // failure; the state is flushed below as on any stop.
            log.LogInformation("Stopped while starting");
            return 0;
        }
        catch (IOException ex) when (IsAddressInUse(ex))
        {
            log.LogCritical("Cannot listen on {Listen}: {Reason}. Set engine.http.listen to a free port, or stop the program using it.", settings.HttpListen, ex.InnerException!.Message);
            return 1;
        }
        catch (Exception ex)
        {
            log.LogCritical(ex, "Sentinel stopped on a fatal error");
            await engine.HeartbeatFailAsync($"Sentinel stopped on a fatal error: {ex.GetType().Name}: {ex.Message}");
            return 1;
        }
        finally
        {
            await engine.DisposeAsync();
            await store.DisposeAsync();
            if (history is not null) await history.DisposeAsync();
            catalog.Dispose();
        }
    }

    // Where the cluster's database is, for an error: host, port and database, never the password.
    private static string ClusterServer(string connectionString)
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        return $"{b.Host}:{b.Port}/{b.Database}";
    }

    // The types a method names are loaded when it is compiled: the tests of a PostgreSQL or a Kestrel error, and the
    // web host, are methods of their own, so that a Sentinel on SQLite without the HTTP server never maps Npgsql,
    // Kestrel and ASP.NET Core (measured: docs/performance.md, "Idle").
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool IsDatabaseError(Exception ex) => ex is Npgsql.NpgsqlException or System.Data.Common.DbException;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool IsAddressInUse(IOException ex) => ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException or SocketException;

    private static IHost BuildHost(EngineSettings settings, SentinelEngine engine, Serilog.Core.Logger serilog)
    {
        if (settings.HttpEnabled) return BuildWebHost(settings, engine, serilog);
        var hb = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        hb.Services.AddSerilog(serilog, dispose: false);
        hb.Services.AddSingleton(engine);
        hb.Services.AddHostedService<EngineService>();
        hb.Services.AddHostedService<ServiceManagerNotifier>();
        hb.Services.AddHostedService<TestHooks>();
        return hb.Build();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static IHost BuildWebHost(EngineSettings settings, SentinelEngine engine, Serilog.Core.Logger serilog)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.AddSerilog(serilog, dispose: false);
        builder.Services.AddSingleton(engine);
        builder.Services.AddHostedService<EngineService>();
        builder.Services.AddHostedService<ServiceManagerNotifier>();
        builder.Services.AddHostedService<TestHooks>();
        TryParseListen(settings.HttpListen, out var endpoint, out _);
        builder.WebHost.UseKestrel(k => k.Listen(endpoint!));
        var app = builder.Build();
        // A request Kestrel cannot read (a malformed chunked body, a body over the limit) is the client's error:
        // 400 (or 413) and one log line, not a 500 with a stack trace.
        app.Use(async (context, next) =>
        {
            try { await next(context); }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!context.Response.HasStarted)
            {
                app.Logger.LogInformation("Refused a bad request: {Method} {Path}: {Reason}", context.Request.Method, context.Request.Path.Value, e.Message);
                Microsoft.AspNetCore.Http.ResponseExtensions.Clear(context.Response);
                context.Response.StatusCode = e.StatusCode;
                await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(context.Response, $"bad request: {e.Message}");
            }
        });
        app.MapSentinel(engine);
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            engine.HttpAddress = address;
            app.Logger.LogInformation("Status page: {Address}/ (API: {Address}/api, metrics: {Address}/metrics)", address, address, address);
        });
        return app;
    }

    /// <summary>What `run` refuses to start with although the config is valid; `validate` reports it too.</summary>
    internal static string? Refusal(EngineSettings settings)
    {
        if (!settings.HttpEnabled) return null;
        if (!TryParseListen(settings.HttpListen, out var listen, out var listenError)) return $"error: {settings.ConfigFile}: engine.http.listen: {listenError}";
        if (!System.Net.IPAddress.IsLoopback(listen!.Address) && EngineApi.ExplicitToken(settings) is null)
            return $"error: {settings.ConfigFile}: engine.http.listen is {settings.HttpListen}, beyond this machine, but no API token is set: "
                + $"anyone who reaches it could pause rules and trigger restarts. Set engine.http.token: \"${{SENTINEL_API_TOKEN}}\" (and the variable), "
                + "or listen on 127.0.0.1.";
        return null;
    }

    internal static bool TryParseListen(string listen, out IPEndPoint? endpoint, out string error)
    {
        endpoint = null;
        error = "";
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen[(colon + 1)..], out var port) || port is < 0 or > 65535)
        {
            error = $"'{listen}' is not host:port: write e.g. 127.0.0.1:5100 (port 0 picks a free one)";
            return false;
        }
        var host = listen[..colon].Trim('[', ']');
        if (host == "localhost") host = "127.0.0.1";
        if (!IPAddress.TryParse(host, out var ip))
        {
            error = $"'{host}' is not an IP address: write 127.0.0.1 (the default, this machine only) or the address of one of this machine's interfaces";
            return false;
        }
        endpoint = new IPEndPoint(ip, port);
        return true;
    }

    private static Serilog.Core.Logger CreateLogger(EngineSettings settings)
    {
        var level = settings.LogLevel switch
        {
            LogLevelName.Trace => LogEventLevel.Verbose,
            LogLevelName.Debug => LogEventLevel.Debug,
            LogLevelName.Warning => LogEventLevel.Warning,
            LogLevelName.Error => LogEventLevel.Error,
            _ => LogEventLevel.Information,
        };
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Quartz", LogEventLevel.Warning)
            // Start-up failures are caught and explained by `run`; the host's own stack-trace copy only confuses.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting.Internal.Host", LogEventLevel.Fatal)
            .Enrich.FromLogContext()
            .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}", formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        if (settings.LogDirectory.Length > 0 && LogFolderWritable(settings.LogDirectory))
        {
            // A file that cannot be written later (a full disk) costs log lines, never the engine: the sink drops them.
            config = config.WriteTo.File(new Serilog.Formatting.Json.JsonFormatter(renderMessage: true),
                Path.Combine(settings.LogDirectory, "sentinel-.log"),
                rollingInterval: RollingInterval.Day,
                fileSizeLimitBytes: 50 * 1024 * 1024,
                rollOnFileSizeLimit: true,
                retainedFileCountLimit: settings.LogRetainedFiles,
                hooks: new PrivateLogFiles());
        }
        return config.CreateLogger();
    }

    // A log folder that cannot be made (a file in its place, no permission, a read-only or full disk) is not a reason
    // not to watch: Sentinel logs to the console (the journal, under systemd) and says why, once.
    private static bool LogFolderWritable(string directory)
    {
        try
        {
            PrivateFiles.CreateDirectory(directory); // the log holds what probes saw
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"warning: cannot use the log folder {directory} ({ex.Message}): logging to the console only. Set engine.log.directory to a folder Sentinel can write.");
            return false;
        }
    }

    // The log holds what probes saw: each file is 0600 as it is opened (the state files are created so; the file
    // sink creates with the default mode).
    private sealed class PrivateLogFiles : Serilog.Sinks.File.FileLifecycleHooks
    {
        public override Stream OnFileOpened(string path, Stream underlyingStream, System.Text.Encoding encoding)
        {
            if (!OperatingSystem.IsWindows())
            {
                try { File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
            }
            return underlyingStream;
        }
    }

    /// <summary>
    /// SENTINEL_TEST_HANG_SCHEDULER_WHEN=PATH makes the scheduler stop running rules once PATH exists (tests of the
    /// dead-man's switch: they make it when they have seen what must come before the hang, not after a guessed time).
    /// </summary>
    private sealed class TestHooks(SentinelEngine engine, ILogger<SentinelEngine> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            if (Environment.GetEnvironmentVariable("SENTINEL_TEST_HANG_SCHEDULER_WHEN") is not { Length: > 0 } trigger) return;
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (!File.Exists(trigger)) await poll.WaitForNextTickAsync(stoppingToken);
            engine.SimulateSchedulerHang();
            logger.LogWarning("TEST HOOK: the scheduler now simulates a hang (SENTINEL_TEST_HANG_SCHEDULER_WHEN)");
        }
    }

    private sealed class EngineService(SentinelEngine engine) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => engine.StartAsync(cancellationToken);
        public Task StopAsync(CancellationToken cancellationToken) => engine.StopAsync(cancellationToken);
    }
}
