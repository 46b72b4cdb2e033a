namespace Sentinel.Engine.Model;

/// <summary>A place in a configuration file; line and column are 1-based.</summary>
internal readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}" : File;
}

/// <summary>One problem in the configuration, with where it is and how to fix it.</summary>
internal sealed record ConfigError(SourceLocation Location, string Message)
{
    public override string ToString() => $"{Location}: {Message}";
}

/// <summary>Thrown when a configuration is rejected; carries every error found, not just the first.</summary>
internal sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception($"the configuration has {errors.Count} error(s):{Environment.NewLine}" + string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}
