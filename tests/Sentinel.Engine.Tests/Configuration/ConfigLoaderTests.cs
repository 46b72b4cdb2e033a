using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Configuration;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly PluginCatalog _catalog;
    private readonly Dictionary<string, string> _env = new() { ["TOKEN"] = "s3cret", ["PORT"] = "8081" };

    public ConfigLoaderTests()
    {
        _catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new TestProbesPlugin()]);
        _catalog.LoadAll();
    }

    private ConfigLoadResult Load(string yaml, string file = "sentinel.yaml")
    {
        var path = _dir.File(file, yaml);
        return new ConfigLoader(n => _env.GetValueOrDefault(n)).Load(path, _catalog);
    }

    private static string Loc(ConfigError e) => $"{e.Location.Line}:{e.Location.Column}";

    [Fact]
    public void Load_ValidConfig_ResolvesDefaultsAndBindsProbeOptions()
    {
        var result = Load("""
            defaults:
              every: 15s
              failure-threshold: 4
            rules:
              - name: api
                probe: { type: scripted, with: { key: "k-${PORT}", value: 7, size: 512MB, delay: 250ms, tags: [a, b] } }
                conditions: ["value == 7", "runs >= 1"]
                success-threshold: 5
            """);

        result.Errors.Should().BeEmpty();
        var rule = result.Config!.Rules.Single();
        rule.Every.Should().Be(TimeSpan.FromSeconds(15));
        rule.Timeout.Should().Be(TimeSpan.FromSeconds(10));
        rule.FailureThreshold.Should().Be(4);
        rule.SuccessThreshold.Should().Be(5);
        rule.Conditions.Should().HaveCount(2);
        var options = rule.ProbeOptions.Should().BeOfType<ScriptedOptions>().Subject;
        options.Key.Should().Be("k-8081");
        options.Value.Should().Be(7);
        options.Size.Bytes.Should().Be(512_000_000);
        options.Delay.Should().Be(TimeSpan.FromMilliseconds(250));
        options.Tags.Should().Equal("a", "b");
    }

    // Each of these once escaped as an exception (a stack trace from validate and run, a silently dropped reload).
    [Theory]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted }, alert-on: [down, foo] }", "3:", "'foo' is not one of")]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted }, alert-on: [down, ~] }", "3:", "a value is required here")]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted, with: { tags: ~ } } }", "3:", "tags: an empty value")]
    [InlineData("maintenance:\n  - { name: m, start: 2026-12-01T00:00:00Z, end: tomorrow }\nrules: []", "3:", "end 'tomorrow' is not a time")]
    [InlineData("include: [\"../*.yaml\"]\nrules: []", "2:", "leaves the config's folder")]
    [InlineData("include: [\"../other.yaml\"]\nrules: []", "2:", "leaves the config's folder")]
    // Found by the config fuzzer (tests/Sentinel.Fault.Tests): a NUL in a path, a double beyond int's range or not a number.
    [InlineData("include: [\"rules\\u0000.yaml\"]\nrules: []", "2:", "a NUL character")]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted, with: { percent: 99999999999999999999 } } }", "3:", "must be between 0 and 100")]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted, with: { percent: .nan } } }", "3:", "is not a number")]
    [InlineData("rules:\n  - { name: a, probe: { type: scripted, with: { percent: 1e309 } } }", "3:", "is not a number")]
    public void ConfigsThatOnceCrashed_AreFileLineColumnErrors(string body, string line, string message)
    {
        var result = Load("engine: { http: { enabled: false } }\n" + body);
        result.IsValid.Should().BeFalse();
        result.Errors.Should().Contain(e => e.Message.Contains(message) && Loc(e).StartsWith(line) && e.Location.Column > 0,
            string.Join("\n", result.Errors.Select(e => $"{Loc(e)} {e.Message}")));
    }

    // Where the folders go when the config does not say: systemd's, the FHS places for a config under /etc (here a
    // temporary folder stands for /etc), else beside the config; and a checkout's relative state: copied to /etc is refused.
    [Fact]
    public void UnsetFolders_FollowSystemd_ThenTheSystemInstall_ThenTheConfigsFolder()
    {
        var local = _dir.File("app/sentinel.yaml", "rules: []\n");
        var (settings, _) = new ConfigLoader(_ => null).LoadEngine(local);
        settings!.StateDirectory.Should().Be(Path.Combine(_dir.Path, "app", "state"));
        settings.LogDirectory.Should().Be(Path.Combine(_dir.Path, "app", "logs"));
        var shipped = Path.Combine(AppContext.BaseDirectory, "plugins");
        Directory.Exists(shipped).Should().BeFalse("the test host has no plugins folder beside it");
        settings.PluginDirectories.Should().Equal([shipped], "no plugins folder beside the config: the one beside the executable");
        _dir.Sub("app/plugins");
        new ConfigLoader(_ => null).LoadEngine(local).Settings!.PluginDirectories.Should().Equal([Path.Combine(_dir.Path, "app", "plugins")],
            "a plugins folder beside the config, none beside the executable");

        var systemd = new ConfigLoader(n => n switch { "STATE_DIRECTORY" => "/var/lib/sentinel", "LOGS_DIRECTORY" => "/var/log/sentinel", _ => null }).LoadEngine(local).Settings!;
        (systemd.StateDirectory, systemd.LogDirectory).Should().Be(("/var/lib/sentinel", "/var/log/sentinel"));

        var etc = Path.Combine(_dir.Path, "etc") + "/";
        var installed = _dir.File("etc/sentinel/sentinel.yaml", "rules: []\n");
        var system = new ConfigLoader(_ => null) { SystemConfigRoot = etc }.LoadEngine(installed).Settings!;
        (system.StateDirectory, system.LogDirectory).Should().Be(("/var/lib/sentinel", "/var/log/sentinel"));
        system.PluginDirectories.Should().Equal([Path.Combine(_dir.Path, "etc", "sentinel", "plugins")],
            "the drop-in folder beside a system config even before it exists (after the shipped plugins, when there are any: Sentinel.Package.Tests)");

        var copied = _dir.File("etc/sentinel/copied.yaml", "engine: { state: ../state, log: { directory: ../logs } }\nrules: []\n");
        var (refused, errors) = new ConfigLoader(_ => null) { SystemConfigRoot = etc }.LoadEngine(copied);
        refused.Should().BeNull();
        errors.Select(e => e.Message).Should().Contain(m => m.Contains("engine.state resolves to " + Path.Combine(_dir.Path, "etc", "state") + ": state does not belong under"))
            .And.Contain(m => m.Contains("engine.log.directory resolves to"));
        errors.Should().OnlyContain(e => e.Location.Line == 1);
    }

    [Fact]
    public void AConfigOverTenMegabytes_OrWithOverAHundredThousandRules_IsRefusedWithAClearError()
    {
        var big = Load("rules: []\n#" + new string('x', 11 * 1024 * 1024));
        big.Errors.Should().ContainSingle().Which.Message.Should().Contain("may be at most 10 MiB");
        big.Errors.Single().Location.Line.Should().Be(1);

        var many = new System.Text.StringBuilder("rules:\n");
        for (var i = 0; i <= 100_000; i++) many.Append("  - { name: r").Append(i).Append(", probe: { type: scripted, with: { key: k } } }\n");
        var tooMany = Load(many.ToString());
        tooMany.Errors.Should().ContainSingle().Which.Message.Should().Contain("100,001 rules: at most 100,000");
    }

    [Fact]
    public void AnIncludePattern_NeverFollowsLinks_SoALinkLoopOrProcSelfRootIsNotWalked()
    {
        _dir.File("rules.d/api.yaml", "rules:\n  - { name: api, probe: { type: scripted, with: { key: k } } }\n");
        Directory.CreateSymbolicLink(System.IO.Path.Combine(_dir.Path, "rules.d", "loop"), System.IO.Path.Combine(_dir.Path, "rules.d"));
        Directory.CreateSymbolicLink(System.IO.Path.Combine(_dir.Path, "rules.d", "root"), "/proc/self/root");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = Load("include: [\"rules.d/**/*.yaml\"]\nrules: []");
        result.Errors.Should().BeEmpty();
        result.Config!.Rules.Select(r => r.Name).Should().Equal("api");
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(30), "a walk through the link loop would not end (this bounds a hang, not a speed)");
    }

    [Fact]
    public void Load_ReportsEveryErrorAtOnce_WithFileLineAndColumn()
    {
        var result = Load("""
            rules:
              - name: api
                every: 10 seconds
                probe:
                  type: scripted
                  with:
                    key: a
                    kee: b
                    level: 40
              - name: web
                probe: { type: htp }
                conditions:
                  - status === 200
              - name: api
                probe: { type: scripted, with: { key: c } }
            """);

        result.IsValid.Should().BeFalse();
        var errors = result.Errors.Select(e => $"{Loc(e)} {e.Message}").ToList();
        errors.Should().HaveCount(6, string.Join("\n", errors));
        errors[0].Should().Be("3:12 rules[0] (api).every: '10 seconds' is not a duration: write a number with a unit (us, ms, s, m, h, d), e.g. 500ms, 10s, 5m, 1h30m");
        errors[1].Should().StartWith("8:9 rules[0] (api).probe.with (scripted): unknown key 'kee' (did you mean 'key'?)");
        errors[2].Should().StartWith("9:16 rules[0] (api).probe.with (scripted).level: The field level must be between 1 and 10. (found 40)");
        errors[3].Should().StartWith("11:20 rules[1] (web).probe: unknown probe type 'htp'");
        errors[3].Should().Contain("known: hang, scripted, slow, stateful, throw");
        errors[4].Should().StartWith("13:18 rules[1] (web).conditions: invalid condition 'status === 200': expected a value");
        errors[5].Should().Be("14:11 rules[2] (api): a rule named 'api' is already defined at sentinel.yaml:2:11: rule names must be unique".Replace("sentinel.yaml", Path.Combine(_dir.Path, "sentinel.yaml")));
        result.Errors.Should().OnlyContain(e => e.Location.File.EndsWith("sentinel.yaml"));
    }

    [Fact]
    public void Load_AMissingPlugin_IsAnErrorThatSaysRunWaits_OrWithAllowMissingPlugins_AWaitingRule()
    {
        const string yaml = """
            rules:
              - name: ok
                probe: { type: scripted, with: { key: a } }
              - name: later
                every: 30s
                description: disk usage of the bot
                probe: { type: file-threshold, with: { path: /x } }
                remediate: [{ type: page-someone }]
                depends-on: [ok]
              - name: needs-later
                depends-on: [later]
                probe: { type: scripted, with: { key: b } }
            """;
        var strict = Load(yaml);
        strict.IsValid.Should().BeFalse();
        strict.Errors.Select(e => $"{Loc(e)} {e.Message}").Should().SatisfyRespectively(
            e => e.Should().StartWith("7:20 rules[1] (later).probe: unknown probe type 'file-threshold'").And.EndWith(ConfigLoader.MissingPluginAdvice),
            e => e.Should().StartWith("8:25 rules[1] (later).remediate[0]: unknown action type 'page-someone'").And.EndWith(ConfigLoader.MissingPluginAdvice));

        var path = _dir.File("sentinel.yaml", yaml);
        var lenient = new ConfigLoader(n => _env.GetValueOrDefault(n)).Load(path, _catalog, allowMissingPlugins: true);
        lenient.Errors.Should().BeEmpty("a rule that depends on a waiting rule is valid too");
        lenient.Config!.Rules.Select(r => r.Name).Should().Equal("ok", "needs-later");
        var waiting = lenient.Config.Waiting.Should().ContainSingle().Subject;
        waiting.Name.Should().Be("later");
        waiting.Description.Should().Be("disk usage of the bot");
        waiting.Schedule.Should().Be("every 30s");
        waiting.Reason.Should().Be("waiting for a plugin that provides probe type 'file-threshold' and action type 'page-someone'");
        $"{Loc(waiting.Warning)} {waiting.Warning.Message}".Should().StartWith("7:20 rule 'later' is waiting for a plugin that provides probe type 'file-threshold'")
            .And.EndWith(": it starts when the plugin is dropped into a plugins folder");
    }

    [Fact]
    public void Load_AMissingPluginInARuleWithOtherErrors_IsAnError_EvenWhereRulesMayWait()
    {
        var path = _dir.File("sentinel.yaml", """
            rules:
              - name: later
                every: 10ms
                probe: { type: file-threshold }
            """);
        var result = new ConfigLoader().Load(path, _catalog, allowMissingPlugins: true);
        result.IsValid.Should().BeFalse("a rule is only left waiting when its plugin is all it lacks");
        result.Errors.Select(e => e.Message).Should().SatisfyRespectively(
            e => e.Should().Contain("10ms is too short"),
            e => e.Should().StartWith("rules[0] (later).probe: unknown probe type 'file-threshold'").And.NotContain("--allow-missing-plugins"));
    }

    [Fact]
    public void Load_AMissingChannelOrHeartbeatType_StaysAnError_EvenWhereRulesMayWait()
    {
        var path = _dir.File("sentinel.yaml", """
            engine:
              heartbeat: { to: [{ type: pager }] }
            channels:
              - { name: chat, type: chat-thing }
            rules: []
            """);
        var result = new ConfigLoader().Load(path, _catalog, allowMissingPlugins: true);
        result.Errors.Select(e => e.Message).Should().SatisfyRespectively(
            e => e.Should().StartWith("engine.heartbeat.to[0]: unknown type 'pager'"),
            e => e.Should().StartWith("channels[0] (chat): unknown channel type 'chat-thing'"));
    }

    [Fact]
    public void Load_UnknownTopLevelAndRuleKeys_SuggestTheRightKey()
    {
        var result = Load("""
            rulez: []
            rules:
              - name: a
                evrey: 5s
                probe: { type: scripted, with: { key: x } }
            """);

        result.Errors.Select(e => $"{Loc(e)} {e.Message}").Should().Equal(
            "1:1 unknown key 'rulez' (did you mean 'rules'?)",
            "4:5 rules[0] (a): unknown key 'evrey' (did you mean 'every'?)");
    }

    [Fact]
    public void Load_MissingRequiredOption_PointsAtTheProbe()
    {
        var result = Load("""
            rules:
              - name: a
                probe:
                  type: scripted
            """);

        result.Errors.Should().ContainSingle().Which.Message.Should().Be("rules[0] (a).probe.with (scripted): missing required key 'key'");
    }

    [Fact]
    public void Load_InvalidYaml_NamesLineColumnAndCause()
    {
        var result = Load("rules:\n  - name: a\n    probe: { type: scripted\n  - name: b\n");

        var error = result.Errors.Should().ContainSingle().Subject;
        error.Location.Line.Should().BeGreaterThan(2);
        error.Message.Should().StartWith("invalid YAML: ");
        error.ToString().Should().StartWith(Path.Combine(_dir.Path, "sentinel.yaml") + ":");
    }

    [Fact]
    public void Load_TabIndentation_GetsAHint()
    {
        var result = Load("rules:\n\t- name: a\n");
        result.Errors.Should().ContainSingle().Which.Message.Should().Contain("replace the tabs");
    }

    [Fact]
    public void Load_MissingEnvironmentVariable_IsAnErrorWithTheFix_AndDefaultsApply()
    {
        var result = Load("""
            rules:
              - name: a
                probe: { type: scripted, with: { key: "${NOPE}" } }
              - name: b
                probe: { type: scripted, with: { key: "${NOPE:-fallback}", tags: ["$${TOKEN}", "${TOKEN}"] } }
            """);

        result.Errors.Should().ContainSingle().Which.Message.Should()
            .Be("rules[0] (a).probe.with (scripted).key: environment variable 'NOPE' is not set: set it, or give a default with ${NOPE:-value}");

        var ok = Load("""
            rules:
              - name: b
                probe: { type: scripted, with: { key: "${NOPE:-fallback}", tags: ["$${TOKEN}", "${TOKEN}"] } }
            """);
        var options = (ScriptedOptions)ok.Config!.Rules[0].ProbeOptions;
        options.Key.Should().Be("fallback");
        options.Tags.Should().Equal("${TOKEN}", "s3cret");
    }

    [Fact]
    public void Load_DurationsOutOfTheirRange_AreErrorsWhereTheyAreWritten_SayingWhatIsAllowed()
    {
        var result = Load("""
            engine:
              state-flush-interval: 2h
              history: { flush-interval: 50ms }
              heartbeat: { every: 500ms, to: [{ type: record, with: { key: k } }] }
            defaults:
              every: 20ms
            channels:
              - { name: ops, type: test-channel, with: { key: k }, give-up-after: 0s }
            rules:
              - name: a
                timeout: 0s
                probe: { type: scripted, with: { key: x } }
            """);
        result.Errors.Select(e => $"{Loc(e)} {e.Message}").Should().BeEquivalentTo(
            "2:25 engine.state-flush-interval: 2h is too long: the longest duration is 1h",
            "3:30 engine.history.flush-interval: 50ms is too short: the shortest duration is 100ms",
            "4:23 engine.heartbeat.every: 500ms is too short: the shortest interval is 1s",
            "6:10 defaults.every: 20ms is too short: the shortest interval is 100ms",
            "8:71 channels[0] (ops).give-up-after: 0s is too short: a give-up-after must be longer than 0s, e.g. 24h",
            "11:14 rules[0] (a).timeout: 0s is too short: a timeout must be longer than 0s, e.g. 10s");
    }

    [Fact]
    public void Load_ARuleOutOfRange_WhosePluginIsMissing_IsAnError_NotLeftWaiting()
    {
        var path = _dir.File("sentinel.yaml", """
            rules:
              - name: later
                failure-threshold: 0
                probe: { type: file-threshold }
            """);
        var result = new ConfigLoader().Load(path, _catalog, allowMissingPlugins: true);
        result.Errors.Select(e => e.Message).Should().SatisfyRespectively(
            e => e.Should().StartWith("rules[0] (later).failure-threshold: "),
            e => e.Should().StartWith("rules[0] (later).probe: unknown probe type 'file-threshold'"));
        result.Config?.Waiting.Should().BeNullOrEmpty();
    }

    [Fact]
    public void Load_EveryAndCronTogether_AndTooShortInterval_AreErrors()
    {
        var result = Load("""
            rules:
              - name: a
                every: 10s
                cron: "*/5 * * * *"
                probe: { type: scripted, with: { key: x } }
              - name: b
                every: 50ms
                probe: { type: scripted, with: { key: x } }
              - name: c
                cron: "61 * * * *"
                probe: { type: scripted, with: { key: x } }
            """);

        result.Errors.Select(e => e.Message).Should().SatisfyRespectively(
            m => m.Should().Be("rules[0] (a): write either 'every' or 'cron', not both"),
            m => m.Should().Be("rules[1] (b).every: 50ms is too short: the shortest interval is 100ms"),
            m => m.Should().StartWith("rules[2] (c).cron: '61 * * * *' is not a valid cron expression"));
    }

    [Fact]
    public void Load_IncludedFiles_AddRules_AndReportTheirOwnLocations()
    {
        _dir.File("rules.d/a.yaml", "rules:\n  - name: from-a\n    probe: { type: scripted, with: { key: a } }\n");
        _dir.File("rules.d/b.yaml", "engine: {}\nrules:\n  - name: from-b\n    probe: { type: scripted, with: { key: b, bogus: 1 } }\n");
        var result = Load("include: [rules.d/*.yaml]\nrules:\n  - name: main\n    probe: { type: scripted, with: { key: m } }\n");

        result.Errors.Select(e => $"{Path.GetFileName(e.Location.File)}:{Loc(e)}").Should().Equal("b.yaml:1:1", "b.yaml:4:46");
        result.Errors[0].Message.Should().Contain("'engine' belongs in the main config file");
        result.Errors[1].Message.Should().Contain("unknown key 'bogus'");

        File.Delete(Path.Combine(_dir.Path, "rules.d/b.yaml"));
        var ok = Load("include: [rules.d/*.yaml]\nrules:\n  - name: main\n    probe: { type: scripted, with: { key: m } }\n");
        ok.Errors.Should().BeEmpty();
        ok.Config!.Rules.Select(r => r.Name).Should().Equal("main", "from-a");
        ok.Config.Files.Should().HaveCount(2);
    }

    [Fact]
    public void FilePathOptions_AreRelativeToTheFileTheyAreWrittenIn()
    {
        _dir.File("rules.d/svc.yaml", "rules:\n  - name: inc\n    probe: { type: scripted, with: { key: i, file: logs/svc.log } }\n");
        var result = Load("""
            include: [rules.d/*.yaml]
            rules:
              - name: main
                probe: { type: scripted, with: { key: m, file: state/bot.pid } }
              - name: absolute
                probe: { type: scripted, with: { key: a, file: /var/log/x.log } }
            """);

        result.Errors.Should().BeEmpty();
        string FileOf(string rule) => ((ScriptedOptions)result.Config!.Rules.Single(r => r.Name == rule).ProbeOptions).File!;
        FileOf("main").Should().Be(Path.Combine(_dir.Path, "state", "bot.pid"));
        FileOf("inc").Should().Be(Path.Combine(_dir.Path, "rules.d", "logs", "svc.log"));
        FileOf("absolute").Should().Be("/var/log/x.log");
    }

    [Fact]
    public void Load_MissingExplicitInclude_IsAnError()
    {
        var result = Load("include: [other.yaml]\nrules: []\n");
        result.Errors.Should().ContainSingle().Which.Message.Should().StartWith("include: 'other.yaml' does not exist");
    }

    [Fact]
    public void Load_MissingFile_SaysSo()
    {
        var result = new ConfigLoader().Load(Path.Combine(_dir.Path, "nope.yaml"), _catalog);
        result.Errors.Should().ContainSingle().Which.Message.Should().StartWith("the file does not exist");
    }

    [Fact]
    public void Fingerprint_ChangesWithTheRule_AndNotWithOtherRules()
    {
        const string b = "  - name: b\n    probe: { type: scripted, with: { key: b } }\n";
        var first = Load("rules:\n  - name: a\n    probe: { type: scripted, with: { key: a } }\n" + b).Config!;
        var same = Load("rules:\n  - name: a\n    probe: { type: scripted, with: { key: a } }   # a comment\n" + b).Config!;
        var changed = Load("rules:\n  - name: a\n    probe: { type: scripted, with: { key: a2 } }\n" + b).Config!;

        same.Rules[0].Fingerprint.Should().Be(first.Rules[0].Fingerprint);
        changed.Rules[0].Fingerprint.Should().NotBe(first.Rules[0].Fingerprint);
        changed.Rules[1].Fingerprint.Should().Be(first.Rules[1].Fingerprint);
    }

    [Fact]
    public void LoadEngine_ResolvesPathsRelativeToTheConfigFile()
    {
        var path = _dir.File("conf/sentinel.yaml", "engine:\n  plugins: ../plugins\n  http: { listen: 127.0.0.1:0 }\nrules: []\n");
        var (settings, errors) = new ConfigLoader().LoadEngine(path);
        errors.Should().BeEmpty();
        settings!.PluginDirectories.Should().Equal([Path.Combine(_dir.Path, "plugins")]);
        var two = _dir.File("conf/two.yaml", "engine:\n  plugins: [../plugins, /opt/more-plugins]\nrules: []\n");
        new ConfigLoader().LoadEngine(two).Settings!.PluginDirectories.Should().Equal([Path.Combine(_dir.Path, "plugins"), "/opt/more-plugins"]);
        settings.StateDirectory.Should().Be(Path.Combine(_dir.Path, "conf", "state"));
        settings.HttpListen.Should().Be("127.0.0.1:0");
    }

    [Fact]
    public void LoadEngine_HistoryAndToken_AreRead_AndBadRetentionsExplained()
    {
        var path = _dir.File("h/sentinel.yaml", "engine:\n  http: { token: \"${API_T}\" }\n  history: { retention: 7d, downsampled-retention: 90d }\nrules: []\n");
        var (settings, errors) = new ConfigLoader(n => n == "API_T" ? "s3cret-token" : null).LoadEngine(path);
        errors.Should().BeEmpty();
        settings!.HttpToken.Should().Be("s3cret-token");
        settings.History.Should().Be(new HistorySettings(true, TimeSpan.FromDays(7), TimeSpan.FromDays(90), TimeSpan.FromSeconds(30)));
        new ConfigLoader().LoadEngine(_dir.File("d/sentinel.yaml", "rules: []\n")).Settings!.History.Should().Be(HistorySettings.Default);

        var bad = _dir.File("b/sentinel.yaml", "engine:\n  history: { retention: 10m, downsampled-retention: 5m }\nrules: []\n");
        var (none, problems) = new ConfigLoader().LoadEngine(bad);
        none.Should().BeNull();
        problems.Select(e => e.Message).Should().Contain(m => m.Contains("retention must be at least 1h"))
            .And.Contain(m => m.Contains("downsampled-retention (5m) must be at least the retention (10m)"));
        problems.Should().OnlyContain(e => e.Location.Line == 2);
    }

    public void Dispose()
    {
        _catalog.Dispose();
        _dir.Dispose();
    }
}
