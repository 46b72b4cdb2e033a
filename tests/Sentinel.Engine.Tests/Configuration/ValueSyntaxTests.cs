using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Tests.Configuration;

public sealed class ValueSyntaxTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("10s", 10_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2d", 172_800_000)]
    [InlineData("0", 0)]
    public void Duration_Parses(string text, double ms) => Duration.Parse(text).TotalMilliseconds.Should().Be(ms);

    [Theory]
    [InlineData("10")]
    [InlineData("10 s")]
    [InlineData("ten seconds")]
    [InlineData("5x")]
    [InlineData("")]
    public void Duration_RejectsWithoutUnit(string text) => Duration.TryParse(text, out _).Should().BeFalse();

    [Theory]
    [InlineData(250, "250ms")]
    [InlineData(90_000, "1m30s")]
    [InlineData(3_600_000, "1h")]
    public void Duration_FormatsAsWritten(double ms, string text) => Duration.Format(TimeSpan.FromMilliseconds(ms)).Should().Be(text);

    [Theory]
    [InlineData("512MB", 512_000_000L)]
    [InlineData("1GiB", 1_073_741_824L)]
    [InlineData("100kB", 100_000L)]
    [InlineData("1.5KiB", 1_536L)]
    [InlineData("4096", 4096L)]
    public void ByteSize_Parses(string text, long bytes) => ByteSize.Parse(text).Bytes.Should().Be(bytes);

    [Theory]
    [InlineData("12 parsecs")]
    [InlineData("MB")]
    [InlineData("-1MB")]
    public void ByteSize_Rejects(string text) => ByteSize.TryParse(text, out _).Should().BeFalse();

    [Theory]
    [InlineData("*/5 * * * *", "0 */5 * * * ?")]
    [InlineData("0 9 * * 1-5", "0 0 9 ? * 2-6")]
    [InlineData("0 0 * * 0", "0 0 0 ? * 1")]
    [InlineData("0 0 * * 7", "0 0 0 ? * 1")]
    [InlineData("0 0 1 * *", "0 0 0 1 * ?")]
    [InlineData("0 0 * * 0-6/2", "0 0 0 ? * 1-7/2")]
    [InlineData("@hourly", "0 0 * * * ?")]
    [InlineData("*/10 * * * * ?", "*/10 * * * * ?")]
    public void Cron_TranslatesToQuartz(string text, string quartz)
    {
        CronText.TryToQuartz(text, out var q, out var error).Should().BeTrue(error);
        q.Should().Be(quartz);
    }

    [Theory]
    [InlineData("* * *", "is not a cron expression")]
    [InlineData("0 0 1 * 1", "sets both day-of-month and day-of-week")]
    [InlineData("0 25 * * *", "is not a valid cron expression")]
    public void Cron_RejectsWithAReason(string text, string reason)
    {
        CronText.TryToQuartz(text, out _, out var error).Should().BeFalse();
        error.Should().Contain(reason);
    }

    [Theory]
    [InlineData("${A}", "alpha")]
    [InlineData("x-${A}-${B:-dflt}", "x-alpha-dflt")]
    [InlineData("$${A}", "${A}")]
    [InlineData("cost $5", "cost $5")]
    [InlineData("${EMPTY:-fallback}", "fallback")]
    public void EnvExpander_Expands(string input, string expected)
    {
        var env = new Dictionary<string, string> { ["A"] = "alpha", ["EMPTY"] = "" };
        EnvExpander.Expand(input, n => env.GetValueOrDefault(n), out var error).Should().Be(expected);
        error.Should().BeNull();
    }

    [Theory]
    [InlineData("${MISSING}", "environment variable 'MISSING' is not set")]
    [InlineData("${A", "unterminated")]
    [InlineData("${A B}", "is not a valid variable reference")]
    public void EnvExpander_ReportsProblems(string input, string problem)
    {
        EnvExpander.Expand(input, _ => null, out var error);
        error.Should().Contain(problem);
    }

    [Theory]
    [InlineData("FromStart", "from-start")]
    [InlineData("MaxRSS", "max-rss")]
    [InlineData("HttpUrl", "http-url")]
    [InlineData("Url", "url")]
    public void Kebab_NamesKeys(string property, string key) => YamlBinder.Kebab(property).Should().Be(key);
}
