using System.Text.Json;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;

namespace Sentinel.Engine.Tests.Conditions;

public sealed class ConditionTests
{
    private static readonly IReadOnlyDictionary<string, object> Data = new Dictionary<string, object>
    {
        ["status"] = 200,
        ["response-time"] = TimeSpan.FromMilliseconds(120),
        ["rss"] = new ByteSize(300_000_000),
        ["body"] = JsonDocument.Parse("""{"status":"ok","version":"2.4.1","checks":{"db":true,"queue":5},"tags":["prod","eu"],"none":null}""").RootElement,
        ["text"] = "all systems go",
        ["up"] = true,
        ["load"] = 1.5,
        ["list"] = new List<object> { "a", "b" },
    };

    [Theory]
    [InlineData("status == 200", true)]
    [InlineData("status != 200", false)]
    [InlineData("status >= 500", false)]
    [InlineData("status < 300", true)]
    [InlineData("response-time < 500ms", true)]
    [InlineData("response-time > 100ms", true)]
    [InlineData("response-time <= 0.1s", false)]
    [InlineData("rss <= 512MB", true)]
    [InlineData("rss > 250MiB", true)]
    [InlineData("body.status == ok", true)]
    [InlineData("body.status == \"ok\"", true)]
    [InlineData("body.status != ok", false)]
    [InlineData("body.version =~ ^2\\.", true)]
    [InlineData("body.version !~ ^2\\.", false)]
    [InlineData("body.checks.db == true", true)]
    [InlineData("body.checks.queue < 10", true)]
    [InlineData("body.tags contains prod", true)]
    [InlineData("body.tags contains us", false)]
    [InlineData("body.tags[1] == eu", true)]
    [InlineData("body.none == null", true)]
    [InlineData("text contains systems", true)]
    [InlineData("text == 'all systems go'", true)]
    [InlineData("text == all systems go", true)]
    [InlineData("up == true", true)]
    [InlineData("load > 1", true)]
    [InlineData("list contains b", true)]
    [InlineData("list !contains c", true)]
    public void Evaluate_JudgesMeasuredValues(string text, bool expected)
        => Condition.Parse(text).Evaluate(Data).Passed.Should().Be(expected, text);

    [Fact]
    public void Evaluate_Failure_ExplainsWhatWasMeasured()
    {
        var outcome = Condition.Parse("status == 503").Evaluate(Data);
        outcome.Passed.Should().BeFalse();
        outcome.Explanation.Should().Be("status == 503 failed: 'status' is 200");

        Condition.Parse("body.status == degraded").Evaluate(Data).Explanation.Should().Be("body.status == degraded failed: 'body.status' is 'ok'");
    }

    [Fact]
    public void Evaluate_MissingValue_FailsAndSaysItWasNotMeasured()
    {
        var outcome = Condition.Parse("body.missing == 1").Evaluate(Data);
        outcome.Passed.Should().BeFalse();
        outcome.Explanation.Should().Contain("'body.missing' was not measured");
        Condition.Parse("status == 200").Evaluate(null).Passed.Should().BeFalse();
    }

    [Fact]
    public void Evaluate_IncomparableTypes_FailWithAReason()
    {
        var outcome = Condition.Parse("text > 5").Evaluate(Data);
        outcome.Passed.Should().BeFalse();
        outcome.Explanation.Should().Contain("cannot be compared with a number");
    }

    [Theory]
    [InlineData("", 0, "starts with the name")]
    [InlineData("200 == status", 0, "starts with the name")]
    [InlineData("status 200", 7, "expected an operator")]
    [InlineData("status ==", 9, "expected a value")]
    [InlineData("status === 200", 9, "expected a value")]
    [InlineData("body =~ ([a-", 8, "invalid regular expression")]
    [InlineData("rss < 5 parsecs", 6, "")]
    [InlineData("rss < 5XB", 6, "unknown unit")]
    [InlineData("text == \"open", 8, "unterminated string")]
    public void Parse_RejectsWithPosition(string text, int column, string message)
    {
        Condition.TryParse(text, out _, out var error, out var col).Should().Be(message.Length == 0, error);
        if (message.Length == 0) return;
        error.Should().Contain(message);
        col.Should().Be(column);
    }
}
