using System.Collections.Immutable;
using System.Reflection;
using System.Text.RegularExpressions;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Plugins;

/// <summary>
/// The probe and action types available to rules: built-in ones plus every <c>plugins/&lt;Name&gt;/&lt;Name&gt;.dll</c>,
/// each loaded into its own collectible load context (its own dependencies, the contract shared with the host).
/// A plugin that fails to load is reported and skipped; the others load. With watching on, a changed or new
/// plugin folder is (re)loaded in place and <see cref="Changed"/> is raised.
/// </summary>
internal sealed partial class PluginCatalog : IDisposable
{
    private static readonly Type[] SharedTypes = [typeof(ISentinelPlugin), typeof(ILogger), typeof(TimeProvider)];

    private readonly IReadOnlyList<string> _directories;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IReadOnlyList<ISentinelPlugin> _builtIn;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LoadedPlugin> _loaded = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ITimer> _debounce = new(StringComparer.Ordinal);
    private readonly List<RetiredLoader> _retired = [];
    private ImmutableDictionary<(PluginKind, string), PluginTypeRegistration> _types = ImmutableDictionary<(PluginKind, string), PluginTypeRegistration>.Empty;
    private ImmutableList<PluginLoadError> _errors = [];
    private readonly List<FileSystemWatcher> _watchers = [];
    private long _generation;

    public PluginCatalog(string? directory, ILogger logger, TimeProvider? time = null, IEnumerable<ISentinelPlugin>? builtIn = null)
        : this(directory is null ? [] : [directory], logger, time, builtIn)
    {
    }

    /// <summary>
    /// A catalog of the plugin folders in <paramref name="directories"/>, in order: a plugin folder in a later one
    /// replaces one of the same name in an earlier one (drop-ins in /etc/sentinel/plugins over the shipped ones).
    /// </summary>
    public PluginCatalog(IEnumerable<string> directories, ILogger logger, TimeProvider? time = null, IEnumerable<ISentinelPlugin>? builtIn = null)
    {
        _directories = directories.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _builtIn = builtIn?.ToList() ?? [];
    }

    public IReadOnlyList<string> Directories => _directories;

    /// <summary>Raised after plugins were reloaded, added or removed, with the names of the affected plugins.</summary>
    public event Action<IReadOnlyCollection<string>>? Changed;

    public TimeSpan ReloadDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    public IReadOnlyList<PluginLoadError> Errors => _errors;

    public IReadOnlyList<PluginInfo> Plugins
    {
        get
        {
            lock (_gate) return _loaded.Values.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => p.Info).ToList();
        }
    }

    public IEnumerable<PluginTypeRegistration> Types => _types.Values.OrderBy(t => t.Kind).ThenBy(t => t.Name, StringComparer.Ordinal);

    public IEnumerable<string> Names(PluginKind kind) => _types.Keys.Where(k => k.Item1 == kind).Select(k => k.Item2);

    public bool TryGet(PluginKind kind, string name, out PluginTypeRegistration registration)
        => _types.TryGetValue((kind, name), out registration!);

    /// <summary>Registers the built-in plugins and loads every plugin folder.</summary>
    public void LoadAll()
    {
        lock (_gate)
        {
            foreach (var plugin in _builtIn)
            {
                var name = "builtin:" + plugin.GetType().Name;
                var (regs, error) = Register(plugin.GetType(), name, plugin);
                if (error is not null) { AddError(name, "(built in)", error); continue; }
                _loaded[name] = new LoadedPlugin(name, null, new PluginInfo(name, "(built in)", "", Commit(name, "(built in)", regs), _time.GetUtcNow()));
            }
            var folders = _directories.Where(System.IO.Directory.Exists)
                .SelectMany(d => System.IO.Directory.GetDirectories(d).Select(Path.GetFileName))
                .Where(f => !f!.StartsWith('.')).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
            foreach (var folder in folders) LoadFolderLocked(folder!);
        }
    }

    /// <summary>Watches the plugin folders; changes are applied after <see cref="ReloadDelay"/> of quiet.</summary>
    public void StartWatching()
    {
        foreach (var directory in _directories)
        {
            try { System.IO.Directory.CreateDirectory(directory); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogFolderNotWatched(_logger, directory, ex.Message);
                continue;
            }
            var watcher = new FileSystemWatcher(directory)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
            };
            watcher.Changed += (_, e) => OnPath(directory, e.FullPath);
            watcher.Created += (_, e) => OnPath(directory, e.FullPath);
            watcher.Deleted += (_, e) => OnPath(directory, e.FullPath);
            watcher.Renamed += (_, e) => { OnPath(directory, e.FullPath); OnPath(directory, e.OldFullPath); };
            watcher.Error += (_, e) => LogWatcherError(_logger, e.GetException());
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
    }

    private void OnPath(string directory, string fullPath)
    {
        var relative = Path.GetRelativePath(directory, fullPath);
        var folder = relative.Split(Path.DirectorySeparatorChar)[0];
        if (folder is "." or ".." || folder.Length == 0 || folder.StartsWith('.')) return;
        lock (_gate)
        {
            if (_debounce.TryGetValue(folder, out var timer))
            {
                timer.Change(ReloadDelay, Timeout.InfiniteTimeSpan);
                return;
            }
            _debounce[folder] = _time.CreateTimer(_ => ReloadFolder(folder), null, ReloadDelay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Reloads (or removes) one plugin folder now and raises <see cref="Changed"/>.</summary>
    public void ReloadFolder(string folder)
    {
        lock (_gate)
        {
            if (_debounce.Remove(folder, out var t)) t.Dispose();
            LoadFolderLocked(folder);
        }
        try { Changed?.Invoke([folder]); }
        catch (Exception ex) { LogChangedHandlerFailed(_logger, ex); }
    }

    // The folder a plugin is loaded from: the last plugin folder that has it (null when none has it any more).
    private string? Provider(string folder)
        => _directories.Select(d => Path.Combine(d, folder)).LastOrDefault(System.IO.Directory.Exists);

    private void LoadFolderLocked(string folder)
    {
        var path = Provider(folder) ?? Path.Combine(_directories[^1], folder);
        foreach (var shadowed in _directories.Select(d => Path.Combine(d, folder)).Where(p => p != path && System.IO.Directory.Exists(p)))
            LogPluginShadowed(_logger, folder, path, shadowed);
        var dll = Path.Combine(path, folder + ".dll");
        _loaded.TryGetValue(folder, out var previous);
        _errors = _errors.RemoveAll(e => e.Plugin == folder);
        if (!System.IO.Directory.Exists(path) || !File.Exists(dll))
        {
            if (previous is not null)
            {
                Remove(previous);
                LogPluginRemoved(_logger, folder);
            }
            else if (System.IO.Directory.Exists(path))
                AddError(folder, path, NestedBuild(path, folder) is { } nested
                    ? $"no {folder}.dll in the folder, but {Path.GetRelativePath(path, nested)} has one: the build folder was copied inside it. Copy its contents instead: mkdir -p {path} && cp -r <build>/net10.0/. {path}/"
                    : $"no {folder}.dll in the folder: a plugin folder must contain the assembly named like the folder");
            return;
        }
        // The second `cp -r bin/Release/net10.0 plugins/X` nests the new build in plugins/X/net10.0/: the old DLL
        // would keep running while the log says "Reloaded". Said, so the copy can be fixed.
        if (NestedBuild(path, folder) is { } stale)
            LogNestedBuild(_logger, folder, Path.GetRelativePath(path, stale), File.GetLastWriteTimeUtc(dll), File.GetLastWriteTimeUtc(stale), path);

        PluginLoader? loader = null;
        try
        {
            loader = PluginLoader.CreateFromAssemblyFile(dll, isUnloadable: true, SharedTypes, config =>
            {
                config.LoadInMemory = true;
                // The shared contract's assemblies are preferred from the host as the plugin asks for them, not loaded
                // with every assembly they reference, transitively, before the first plugin runs (that mapped ~30 of
                // the framework's assemblies, HTTP/3 and XML included, into every Sentinel: docs/performance.md, "Idle").
                config.IsLazyLoaded = true;
            });
            var assembly = loader.LoadDefaultAssembly();
            if (ContractMismatch(assembly) is { } mismatch) throw new PluginException(mismatch);
            var entryTypes = ExportedTypes(assembly).Where(t => typeof(ISentinelPlugin).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false }).ToList();
            if (entryTypes.Count == 0)
            {
                var foreign = ExportedTypes(assembly).Any(t => t.GetInterfaces().Any(i => i.FullName == typeof(ISentinelPlugin).FullName));
                throw new PluginException(foreign
                    ? "its ISentinelPlugin comes from its own copy of Sentinel.Abstractions: reference the contract with Private=false and ExcludeAssets=runtime, and delete Sentinel.Abstractions.dll from the plugin folder"
                    : "no public class implements ISentinelPlugin");
            }
            var all = new List<PluginTypeRegistration>();
            foreach (var type in entryTypes)
            {
                var (regs, error) = Register(type, folder, null);
                if (error is not null) throw new PluginException(error);
                all.AddRange(regs);
            }
            if (previous is not null) Remove(previous);
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? assembly.GetName().Version?.ToString() ?? "";
            var committed = Commit(folder, path, all);
            _loaded[folder] = new LoadedPlugin(folder, loader, new PluginInfo(folder, path, version, committed, _time.GetUtcNow()));
            if (previous is not null) LogPluginReloaded(_logger, folder, version, committed.Count);
            else LogPluginLoaded(_logger, folder, version, string.Join(", ", committed.Select(r => $"{r.Kind.ToString().ToLowerInvariant()} '{r.Name}'")));
        }
        catch (Exception ex)
        {
            loader?.Dispose();
            var reason = ex switch
            {
                PluginException pe => pe.Message,
                ReflectionTypeLoadException rtle => "its types could not be loaded: " + string.Join("; ", rtle.LoaderExceptions.Select(e => e?.Message).Distinct()),
                BadImageFormatException => $"{folder}.dll is not a valid .NET assembly (still being copied, or built for another platform)",
                _ => ex.Message,
            };
            if (previous is not null) reason += "; still running the previously loaded version";
            AddError(folder, path, reason);
        }
    }

    /// <summary>The contract version this Sentinel implements (Sentinel.Abstractions' major and minor).</summary>
    public static Version ContractVersion { get; } = typeof(ISentinelPlugin).Assembly.GetName().Version!;

    // Before 1.0 a minor version of the contract may break plugins (0.2 made ProbeStatus.Unhealthy 0): a plugin built
    // against another one would load and then be misread, so it is refused with what to do.
    private static string? ContractMismatch(Assembly assembly)
    {
        if (assembly.GetReferencedAssemblies().FirstOrDefault(a => a.Name == "Sentinel.Abstractions")?.Version is not { } built) return null;
        var (have, want) = ($"{ContractVersion.Major}.{ContractVersion.Minor}", $"{built.Major}.{built.Minor}");
        if (have == want || (ContractVersion.Major >= 1 && built.Major == ContractVersion.Major && built.Minor <= ContractVersion.Minor)) return null;
        return built < ContractVersion
            ? $"it was built against the plugin contract {want} (Sentinel.Abstractions {built.ToString(3)}); this Sentinel's is {have}: rebuild it against Sentinel.Abstractions {have} (docs/writing-plugins.md lists what changed)"
            : $"it was built against the plugin contract {want}, newer than this Sentinel's {have}: upgrade Sentinel, or use a build of the plugin for {have}";
    }

    private static IEnumerable<Type> ExportedTypes(Assembly assembly)
    {
        try { return assembly.GetExportedTypes(); }
        catch (ReflectionTypeLoadException ex) { return ex.Types.Where(t => t is not null)!; }
    }

    private (List<PluginTypeRegistration> Registrations, string? Error) Register(Type entryType, string plugin, ISentinelPlugin? instance)
    {
        var registrar = new Registrar(plugin, Interlocked.Increment(ref _generation));
        try
        {
            instance ??= (ISentinelPlugin)Activator.CreateInstance(entryType)!;
            instance.Register(registrar);
        }
        catch (Exception ex)
        {
            var inner = ex is TargetInvocationException { InnerException: { } ie } ? ie : ex;
            return ([], $"{entryType.Name}.Register threw {inner.GetType().Name}: {inner.Message}");
        }
        return registrar.Problems.Count > 0 ? ([], string.Join("; ", registrar.Problems)) : (registrar.Registrations, null);
    }

    private List<PluginTypeRegistration> Commit(string plugin, string path, List<PluginTypeRegistration> regs)
    {
        var committed = new List<PluginTypeRegistration>();
        var builder = _types.ToBuilder();
        foreach (var reg in regs)
        {
            if (builder.TryGetValue((reg.Kind, reg.Name), out var existing) && existing.Plugin != plugin)
            {
                AddError(plugin, path,
                    $"{reg.Kind.ToString().ToLowerInvariant()} name '{reg.Name}' is already registered by plugin '{existing.Plugin}': rename one of them (this one was skipped)");
                continue;
            }
            builder[(reg.Kind, reg.Name)] = reg;
            committed.Add(reg);
        }
        _types = builder.ToImmutable();
        return committed;
    }

    private void Remove(LoadedPlugin plugin)
    {
        _types = _types.RemoveRange(_types.Where(kv => kv.Value.Plugin == plugin.Name).Select(kv => kv.Key));
        _loaded.Remove(plugin.Name);
        if (plugin.Loader is not { } loader) return;
        // Rules switch to the new version once the engine has reloaded them; until then their running probes may
        // still load assemblies from the old context, so it is unloaded a while later, not now.
        var retired = new RetiredLoader(loader);
        lock (_retired) _retired.Add(retired);
        retired.Timer = _time.CreateTimer(_ =>
        {
            lock (_retired) _retired.Remove(retired);
            retired.Dispose();
        }, null, RetiredUnloadDelay, Timeout.InfiniteTimeSpan);
    }

    // Keeps the timer referenced (an unreferenced timer may be collected before it fires).
    private sealed class RetiredLoader(PluginLoader loader) : IDisposable
    {
        public ITimer? Timer { get; set; }

        public void Dispose()
        {
            Timer?.Dispose();
            loader.Dispose();
        }
    }

    /// <summary>How long a replaced plugin version stays loaded for the rules still running it.</summary>
    public static TimeSpan RetiredUnloadDelay { get; } = TimeSpan.FromSeconds(30);

    private void AddError(string plugin, string path, string reason)
    {
        var error = new PluginLoadError(plugin, path, reason, _time.GetUtcNow());
        _errors = _errors.Add(error);
        LogPluginFailed(_logger, plugin, reason);
    }

    public void Dispose()
    {
        foreach (var w in _watchers) w.Dispose();
        _watchers.Clear();
        lock (_gate)
        {
            foreach (var t in _debounce.Values) t.Dispose();
            _debounce.Clear();
            foreach (var p in _loaded.Values) p.Loader?.Dispose();
            _loaded.Clear();
        }
        lock (_retired)
        {
            foreach (var r in _retired) r.Dispose();
            _retired.Clear();
        }
    }

    private sealed record LoadedPlugin(string Name, PluginLoader? Loader, PluginInfo Info);

    private sealed class PluginException(string message) : Exception(message);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Plugin {Plugin}: {Nested} is another build of it inside its folder (a build folder copied into it); "
        + "the one that runs is {Plugin}.dll of {Running:u}, not the nested one of {Nested2:u}. Copy the build's contents: cp -r <build>/net10.0/. {Path}/ (and delete the subfolder)")]
    private static partial void LogNestedBuild(ILogger logger, string plugin, string nested, DateTime running, DateTime nested2, string path);

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Loaded plugin {Plugin} {Version}: {Types}")]
    private static partial void LogPluginLoaded(ILogger logger, string plugin, string version, string types);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Reloaded plugin {Plugin} {Version} ({Count} types)")]
    private static partial void LogPluginReloaded(ILogger logger, string plugin, string version, int count);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "Plugin {Plugin} failed to load: {Reason}")]
    private static partial void LogPluginFailed(ILogger logger, string plugin, string reason);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Plugin {Plugin} was removed")]
    private static partial void LogPluginRemoved(ILogger logger, string plugin);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "Plugin {Plugin}: using {Path}, which replaces {Shadowed} (a later plugin folder wins)")]
    private static partial void LogPluginShadowed(ILogger logger, string plugin, string path, string shadowed);

    [LoggerMessage(EventId = 108, Level = LogLevel.Warning, Message = "Plugin folder {Folder} is not watched ({Reason}): plugins dropped there are seen at the next start")]
    private static partial void LogFolderNotWatched(ILogger logger, string folder, string reason);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "The plugin folder watcher failed; plugin changes may be missed until restart")]
    private static partial void LogWatcherError(ILogger logger, Exception ex);

    [LoggerMessage(EventId = 105, Level = LogLevel.Error, Message = "A plugin change handler failed")]
    private static partial void LogChangedHandlerFailed(ILogger logger, Exception ex);
}
