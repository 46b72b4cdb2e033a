using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Scheduling;

namespace Sentinel.Engine.Tests.Scheduling;

/// <summary>
/// Rules that share an interval are fired by slot: one trigger per (interval, slot), not one per rule. The slot of a
/// rule is the same in every process (cluster nodes must agree); the real Quartz adapter fires every rule of a slot,
/// never one rule twice at once, and a slow rule holds up no other.
/// </summary>
public sealed class IntervalSlotTests
{
    [Fact]
    public void TenThousandRulesAt10s_AreAHundredSlots_EachAboutAHundredRules()
    {
        IntervalShards.Slots(TimeSpan.FromMilliseconds(100)).Should().Be(1);
        IntervalShards.Slots(TimeSpan.FromSeconds(1)).Should().Be(10);
        IntervalShards.Slots(TimeSpan.FromSeconds(10)).Should().Be(100);
        IntervalShards.Slots(TimeSpan.FromHours(1)).Should().Be(100, "rules are spread over the first 10s of a long interval");
        var every = TimeSpan.FromSeconds(10);
        var sizes = Enumerable.Range(0, 10_000).GroupBy(i => IntervalShards.SlotOf($"r{i}", every)).ToDictionary(g => g.Key, g => g.Count());
        sizes.Keys.Should().BeEquivalentTo(Enumerable.Range(0, 100));
        sizes.Values.Should().OnlyContain(n => n >= 50 && n <= 150, "a hash spreads names evenly");
        IntervalShards.Phase(99, every).Should().Be(TimeSpan.FromMilliseconds(9900));
    }

    [Fact]
    public void ARulesSlot_IsTheSameInEveryProcess()
    {
        // FNV-1a of the name: fixed numbers, where string.GetHashCode would change with each process.
        IntervalShards.SlotOf("api", TimeSpan.FromSeconds(10)).Should().Be(IntervalShards.SlotOf("api", TimeSpan.FromSeconds(10)));
        new[] { "api", "db", "bot-1" }.Select(n => IntervalShards.SlotOf(n, TimeSpan.FromSeconds(10))).Should().Equal(Fnv("api") % 100, Fnv("db") % 100, Fnv("bot-1") % 100);
        IntervalShards.Key(TimeSpan.FromSeconds(10), 7).Should().Be("every-100000000-7");

        static int Fnv(string s)
        {
            var h = 2166136261u;
            foreach (var b in System.Text.Encoding.Unicode.GetBytes(s)) h = (h ^ b) * 16777619u;
            return (int)(h % 100u);
        }
    }

    [Fact]
    public async Task QuartzFiresEveryRuleOfASlot_NeverOneTwiceAtOnce_AndASlowOneHoldsUpNoOther()
    {
        var runs = new ConcurrentDictionary<string, int>();
        var running = new ConcurrentDictionary<string, int>();
        var overlap = 0;
        var log = new Support.ListLogger();
        await using var scheduler = new QuartzRuleScheduler(new Support.ListLoggerFactory(log), maxConcurrency: 100);
        await scheduler.StartAsync(async (rule, _, ct) =>
        {
            if (running.AddOrUpdate(rule, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref overlap);
            try
            {
                runs.AddOrUpdate(rule, 1, (_, n) => n + 1);
                if (rule == "slow") await Task.Delay(TimeSpan.FromSeconds(30), ct);
            }
            catch (OperationCanceledException) { }
            finally { running.AddOrUpdate(rule, 0, (_, n) => n - 1); }
        }, () => { }, CancellationToken.None);
        var every = TimeSpan.FromMilliseconds(200);
        var names = Enumerable.Range(0, 40).Select(i => $"r{i}").Append("slow").Append("gone").ToList();
        foreach (var name in names) await scheduler.ScheduleAsync(Rule(name, every), CancellationToken.None);

        var others = names.Where(n => n is not ("slow" or "gone")).ToList();
        await Eventually.Until(() => others.All(n => runs.GetValueOrDefault(n) >= 3), what: "three checks of every rule");
        runs.GetValueOrDefault("slow").Should().Be(1, "a rule whose check still runs is not started beside it");

        await scheduler.UnscheduleAsync("gone", CancellationToken.None);
        int Least() => others.Min(n => runs.GetValueOrDefault(n));
        var before = Least();
        await Eventually.Until(() => Least() >= before + 2, what: "two more fires of every other rule");
        var afterUnschedule = runs.GetValueOrDefault("gone");
        await Eventually.Until(() => Least() >= before + 4, what: "two more fires again");
        runs.GetValueOrDefault("gone").Should().Be(afterUnschedule, "an unscheduled rule is not fired");
        // A rule not checked because its check outlives its period is said, once (silent, a stuck check was a rule
        // that nobody checked and nothing told).
        log.Lines.Where(l => l.StartsWith("Warning: Rule slow: its check due at", StringComparison.Ordinal) && l.EndsWith("is still running; it is not checked again until that check ends", StringComparison.Ordinal))
            .Should().ContainSingle();
        log.Lines.Should().NotContain(l => l.Contains("Rule r1:"), "a rule checked on time is not spoken of");

        await scheduler.StopAsync(CancellationToken.None);
        running.GetValueOrDefault("slow").Should().Be(0, "stopping waits for the checks it started (the slow one was cancelled)");
        Volatile.Read(ref overlap).Should().Be(0);
    }

    private static RuleDefinition Rule(string name, TimeSpan every) => new()
    {
        Name = name, Every = every, Timeout = TimeSpan.FromSeconds(10), FailureThreshold = 1, SuccessThreshold = 1, Fingerprint = name,
        Probe = new PluginTypeRegistration("noop", PluginKind.Probe, typeof(object), typeof(object), null, "test", 1), ProbeOptions = new object(),
    };
}
