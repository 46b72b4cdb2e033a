using Sentinel.Abstractions;

namespace Sentinel.Plugins.Files;

public sealed class FilesPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<FileValidProbe, FileValidProbeOptions>("file-valid", "A file (or glob) exists, is not empty, parses as JSON or YAML, and is fresh enough.");
        registrar.AddProbe<DiskProbe, DiskProbeOptions>("disk", "Free space and inodes of the filesystem holding a path, and how fast it fills.");
        registrar.AddAction<BackupAction, BackupActionOptions>("backup", "Copies valid files to a backup folder with a timestamp, skipping unchanged ones, keeping the newest N.");
        registrar.AddAction<RestoreAction, RestoreActionOptions>("restore", "Restores a file from its newest valid backup; the corrupt file is kept aside.");
        registrar.AddAction<CleanupAction, CleanupActionOptions>("cleanup", "Deletes or compresses old files under configured roots, largest first, until enough space is free.");
    }
}
