using System.Text;
using AwesomeAssertions;
using Sentinel.Abstractions;
using Sentinel.Engine.Metrics;
using Sentinel.Engine.Model;
using Sentinel.Engine.Tests.Support;
using Xunit;

namespace Sentinel.Engine.Tests.Api;

/// <summary>The rules' series, written by Sentinel rather than kept as prometheus-net children: the text format and its sums.</summary>
public sealed class RuleSeriesTests
{
    private static async Task<(string Text, Dictionary<string, double> Samples)> WriteAsync(RuleSeries series, params (string, RuleStatus)[] states)
    {
        using var stream = new MemoryStream();
        await series.WriteAsync(stream, states, CancellationToken.None);
        var text = Encoding.UTF8.GetString(stream.ToArray());
        return (text, PrometheusText.Parse(text));
    }

    [Fact]
    public async Task Checks_FillTheHistogramsBuckets_TheCountersByResult_AndTheStateGauges()
    {
        var series = new RuleSeries();
        series.OnCheck("api", ProbeStatus.Healthy, true, TimeSpan.FromMilliseconds(0.5));
        series.OnCheck("api", ProbeStatus.Degraded, true, TimeSpan.FromMilliseconds(3));
        series.OnCheck("api", ProbeStatus.Unhealthy, false, TimeSpan.FromSeconds(40));
        series.OnCheck("db", ProbeStatus.Healthy, false, TimeSpan.FromMilliseconds(1)); // a condition failed a healthy probe
        var (text, m) = await WriteAsync(series, ("api", RuleStatus.Down), ("db", RuleStatus.Failing), ("new", RuleStatus.Pending));

        m["sentinel_check_duration_seconds_bucket{rule=\"api\",le=\"0.001\"}"].Should().Be(1);
        m["sentinel_check_duration_seconds_bucket{rule=\"api\",le=\"0.005\"}"].Should().Be(2);
        m["sentinel_check_duration_seconds_bucket{rule=\"api\",le=\"30\"}"].Should().Be(2, "40 s is above the last bucket");
        m["sentinel_check_duration_seconds_bucket{rule=\"api\",le=\"+Inf\"}"].Should().Be(3);
        m["sentinel_check_duration_seconds_count{rule=\"api\"}"].Should().Be(3);
        m["sentinel_check_duration_seconds_sum{rule=\"api\"}"].Should().BeApproximately(40.0035, 1e-9);
        m["sentinel_check_duration_seconds_bucket{rule=\"db\",le=\"0.001\"}"].Should().Be(1, "a bucket's bound is inclusive");
        m["sentinel_checks_total{rule=\"api\",result=\"healthy\"}"].Should().Be(1);
        m["sentinel_checks_total{rule=\"api\",result=\"degraded\"}"].Should().Be(1);
        m["sentinel_checks_total{rule=\"api\",result=\"unhealthy\"}"].Should().Be(1);
        m["sentinel_checks_total{rule=\"db\",result=\"unhealthy\"}"].Should().Be(0, "a rule's series are all there from its first check");
        m["sentinel_check_failures_total{rule=\"api\"}"].Should().Be(1);
        m["sentinel_check_failures_total{rule=\"db\"}"].Should().Be(1);
        m["sentinel_rule_state{rule=\"api\",state=\"down\"}"].Should().Be(1);
        m["sentinel_rule_state{rule=\"api\",state=\"healthy\"}"].Should().Be(0);
        m["sentinel_rule_up{rule=\"api\"}"].Should().Be(0);
        m["sentinel_rule_up{rule=\"db\"}"].Should().Be(1, "failing is not down yet");
        m["sentinel_rule_up{rule=\"new\"}"].Should().Be(0);
        m.Keys.Should().NotContain(k => k.StartsWith("sentinel_checks_total{rule=\"new\"", StringComparison.Ordinal), "a rule not checked yet has no check series");
        text.Should().Contain("# TYPE sentinel_check_duration_seconds histogram\n").And.Contain("# TYPE sentinel_rule_state gauge\n");

        series.Remove("api");
        (await WriteAsync(series, ("db", RuleStatus.Healthy))).Samples.Keys.Should().NotContain(k => k.Contains("rule=\"api\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ChecksFromManyThreads_AreAllCounted_AndSummed()
    {
        var series = new RuleSeries();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 10_000; i++) series.OnCheck("api", ProbeStatus.Healthy, true, TimeSpan.FromMilliseconds(2));
        })));
        var (_, m) = await WriteAsync(series, ("api", RuleStatus.Healthy));
        m["sentinel_check_duration_seconds_count{rule=\"api\"}"].Should().Be(40_000);
        m["sentinel_checks_total{rule=\"api\",result=\"healthy\"}"].Should().Be(40_000);
        m["sentinel_check_duration_seconds_sum{rule=\"api\"}"].Should().BeApproximately(80, 1e-6, "no addition to the sum is lost to a race");
    }

    [Theory]
    [InlineData("api", "api")]
    [InlineData("say \"hi\"", "say \\\"hi\\\"")]
    [InlineData("a\\b", "a\\\\b")]
    [InlineData("two\nlines", "two\\nlines")]
    public void LabelValues_AreEscaped_AsTheTextFormatSays(string value, string written) => RuleSeries.Escape(value).Should().Be(written);
}
