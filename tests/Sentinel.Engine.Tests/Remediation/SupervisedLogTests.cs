using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Remediation;

public sealed class SupervisedLogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Rotation_KeepsTheServiceWritingToItsFile_AndShiftsOldCopies()
    {
        var log = Path.Combine(_dir.Path, "svc.log");
        // A real writer holding the file open in append mode, as a supervised service does.
        using var writer = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh",
            ["-c", $"i=0; while true; do i=$((i+1)); echo \"line $i\"; sleep 0.01; done >> '{log}'"]))!;
        try
        {
            for (var round = 1; round <= 3; round++)
            {
                await Eventually.Until(() => File.Exists(log) && new FileInfo(log).Length >= 200, what: "the log grew");
                LogRotation.RotateIfNeeded(log, maxBytes: 200, keep: 2).Should().BeTrue();
            }
            await Eventually.Until(() => new FileInfo(log).Length > 0, what: "the writer goes on after rotation");
            File.Exists(log + ".1").Should().BeTrue();
            File.Exists(log + ".2").Should().BeTrue();
            File.Exists(log + ".3").Should().BeFalse("two rotated files are kept");
            // Appending after the truncation writes at the new end, not at the old offset (no hole of NULs).
            File.ReadAllText(log).Should().NotContain("\0").And.StartWith("line ");
            int Last(string f) => int.Parse(File.ReadAllLines(f).Last(l => l.Length > 0)["line ".Length..]);
            Last(log + ".2").Should().BeLessThan(Last(log + ".1"));
            LogRotation.RotateIfNeeded(log, maxBytes: 1 << 30, keep: 2).Should().BeFalse("under the limit");
        }
        finally { writer.Kill(); }
    }

    [Fact]
    public async Task SupervisedCommand_GetsItsArgumentsLiterally_AndItsOutputInItsLogFile()
    {
        var marker = Path.Combine(_dir.Path, "pwned");
        var arg = $"$(touch {marker}); * `touch {marker}` $HOME";
        var def = SupervisorPolicyTests.Load(_dir, $$"""
            rules:
              - name: svc
                supervise:
                  command: [/usr/bin/python3, -c, "import sys; print(repr(sys.argv[1])); sys.stdout.flush(); sys.stdin.read()", "{{arg.Replace("$", "$$")}}"]
                  stdout: out.log
                  restart: never
            """);
        var time = new FakeTimeProvider();
        await using var remediator = new RuleRemediator(def, [], new SupervisorPolicyTests.TestHost(), NullLoggerFactory.Instance, time, CancellationToken.None);
        remediator.Activate();
        var log = Path.Combine(_dir.Path, "out.log");
        await Eventually.Until(() => File.Exists(log) && File.ReadAllText(log).Length > 0, what: "output in the log file");
        File.ReadAllText(log).Trim().Should().Be("'" + arg + "'");
        File.Exists(marker).Should().BeFalse();
        try { await remediator.DisposeAsync(stopService: true).AsTask().WaitAsync(TimeSpan.FromSeconds(15)); }
        catch (TimeoutException) { }
    }
}
