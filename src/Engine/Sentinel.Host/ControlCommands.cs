namespace Sentinel.Host;

/// <summary>`sentinel ack INCIDENT`, `sentinel pause|resume|run|remediate RULE`: changing calls to the running Sentinel's API.</summary>
internal static class ControlCommands
{
    public static Task<int> AckAsync(string configPath, long incident, CancellationToken ct)
        => PostAsync(configPath, $"/api/incidents/{incident}/ack", _ => $"incident #{incident} acknowledged: its escalations and reminders stop", ct);

    public static Task<int> PauseAsync(string configPath, string rule, CancellationToken ct)
        => PostAsync(configPath, $"/api/rules/{Uri.EscapeDataString(rule)}/pause", _ => $"{rule}: paused (not checked, not alerted for) until `sentinel resume {rule}`", ct);

    public static Task<int> ResumeAsync(string configPath, string rule, CancellationToken ct)
        => PostAsync(configPath, $"/api/rules/{Uri.EscapeDataString(rule)}/resume", _ => $"{rule}: resumed", ct);

    public static Task<int> RunAsync(string configPath, string rule, CancellationToken ct)
        => PostAsync(configPath, $"/api/rules/{Uri.EscapeDataString(rule)}/run", body =>
        {
            var check = body.GetProperty("check");
            return $"{rule}: {check.GetProperty("status").GetString()} in {check.GetProperty("duration").GetString()}: {check.GetProperty("description").GetString()} (rule {body.GetProperty("status").GetString()})";
        }, ct);

    public static Task<int> RemediateAsync(string configPath, string rule, CancellationToken ct)
        => PostAsync(configPath, $"/api/rules/{Uri.EscapeDataString(rule)}/remediate", body =>
            $"{rule}: {(body.GetProperty("remediated").GetBoolean() ? "remediated" : "remediation failed")}: {body.GetProperty("message").GetString()}", ct,
            body => body.GetProperty("remediated").GetBoolean());

    /// <summary>`sentinel stop|start|restart RULE`: the supervised service, through the API.</summary>
    public static Task<int> ServiceAsync(string configPath, string verb, string rule, CancellationToken ct)
        => PostAsync(configPath, $"/api/rules/{Uri.EscapeDataString(rule)}/{verb}", body => $"{rule}: {body.GetProperty("message").GetString()}", ct);

    private static async Task<int> PostAsync(string configPath, string path, Func<System.Text.Json.JsonElement, string> describe, CancellationToken ct,
        Func<System.Text.Json.JsonElement, bool>? succeeded = null)
    {
        using var api = EngineApi.Open(configPath);
        if (api is null) return Bootstrap.ExitConfigInvalid;
        var answer = await api.SendAsync(HttpMethod.Post, path, ct);
        if (answer is null) return 1;
        if (!answer.Ok)
        {
            Console.Error.WriteLine($"error: {answer.Error}");
            return 1;
        }
        Console.WriteLine(describe(answer.Body));
        return succeeded is null || succeeded(answer.Body) ? 0 : 1;
    }
}
