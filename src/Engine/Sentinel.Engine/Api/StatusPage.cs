namespace Sentinel.Engine.Api;

/// <summary>The status page: one self-contained HTML file (no external asset), embedded in the engine.</summary>
internal static class StatusPage
{
    public static string Html { get; } = Load();

    private static string Load()
    {
        using var stream = typeof(StatusPage).Assembly.GetManifestResourceStream("Sentinel.Engine.Api.StatusPage.html")
            ?? throw new InvalidOperationException("the status page resource is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
