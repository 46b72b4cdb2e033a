using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Remediation;

/// <summary>Sentinel's own stop, with a remediation running: it is not a failed attempt, and nobody is told one.</summary>
public sealed class ShutdownTests : IDisposable
{
    private readonly TempDir _dir = new();

    // Before the fix: the wait for the action ended with the stop and the attempt was reported "did not finish within
    // 10m and was abandoned" (or the action's own error), a remediation-failed event that alerts.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ARemediationCutShortByTheStop_IsNotAFailedAttempt(bool actionCallsItAFailure)
    {
        var def = SupervisorPolicyTests.Load(_dir, """
            rules:
              - name: svc
                every: 10s
                probe: { type: scripted, with: { key: never-set } }
                remediate: [{ type: test-channel, with: { key: unused } }]
            """);
        var host = new SupervisorPolicyTests.TestHost();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var stopping = new CancellationTokenSource();
        var action = new BlockingAction(actionCallsItAFailure);
        await using var remediator = new RuleRemediator(def, [action], host, NullLoggerFactory.Instance, time, stopping.Token);
        remediator.Activate();

        remediator.OnCheck(host.Rule(RuleStatus.Down), new CheckRecord(Sentinel.Abstractions.ProbeStatus.Unhealthy, "down", time.GetUtcNow(), TimeSpan.Zero));
        await action.Started.Task.Within();
        stopping.Cancel();
        await action.Ended.Task.Within();
        await remediator.WaitIdleAsync().Within();

        host.Events.Select(e => e.Kind).Should().NotContain([RemediationEventKind.RemediationFailed, RemediationEventKind.GaveUp],
            "the attempt did not fail: Sentinel stopped it");
    }

    private sealed class BlockingAction(bool callsItAFailure) : Sentinel.Abstractions.IAction
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask ExecuteAsync(Sentinel.Abstractions.ActionContext context, CancellationToken cancellationToken)
        {
            Started.TrySetResult();
            try { await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken); }
            catch (OperationCanceledException) when (callsItAFailure) { throw new InvalidOperationException("the request was aborted"); }
            finally { Ended.TrySetResult(); }
        }
    }

    public void Dispose() => _dir.Dispose();
}
