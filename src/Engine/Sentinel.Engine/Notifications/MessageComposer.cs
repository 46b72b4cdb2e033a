using System.Net;
using System.Text;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Notifications;

/// <summary>Turns one or several items (grouped) into a subject, a text and an HTML body, and an SMS-sized short form.</summary>
internal static class MessageComposer
{
    public static string Host { get; } = Environment.MachineName;

    private static string Word(string kind) => kind switch
    {
        NotificationKind.Down => "DOWN",
        NotificationKind.Resolved => "RESOLVED",
        NotificationKind.BrieflyDown => "BRIEFLY DOWN",
        NotificationKind.Reminder => "STILL DOWN",
        NotificationKind.Escalation => "STILL DOWN",
        NotificationKind.GaveUp => "GAVE UP restarting",
        NotificationKind.RemediationFailed => "RESTART FAILED",
        NotificationKind.RestartRate => "RESTARTING OFTEN",
        NotificationKind.Exited => "CRASHED",
        "test" => "TEST",
        _ => kind.ToUpperInvariant(),
    };

    public static Notification Compose(IReadOnlyList<NotificationItem> items, TemplateSpec? template, DateTimeOffset now, bool test = false)
    {
        string subject;
        string shortText;
        if (items.Count == 1)
        {
            var i = items[0];
            subject = test ? $"[Sentinel] Test message from {Host}" : $"[Sentinel] {Word(i.Kind)}: {i.Rule}";
            shortText = test ? $"Sentinel test message from {Host}" : $"{Word(i.Kind)} {i.Rule}: {i.Description}" + (i.Kind is NotificationKind.Down or NotificationKind.Reminder or NotificationKind.Escalation ? $" (since {i.Since:HH:mm}Z)" : "");
        }
        else
        {
            var parts = items.GroupBy(i => Word(i.Kind)).Select(g => $"{g.Count()} {g.Key}").ToList();
            var names = string.Join(", ", items.Select(i => i.Rule).Distinct().Take(8)) + (items.Select(i => i.Rule).Distinct().Count() > 8 ? ", …" : "");
            subject = $"[Sentinel] {string.Join(", ", parts)}: {names}";
            shortText = string.Join("; ", items.GroupBy(i => Word(i.Kind)).Select(g => $"{g.Count()} {g.Key}: {string.Join(", ", g.Select(i => i.Rule).Distinct().Take(6))}"));
        }

        var text = new StringBuilder();
        var html = new StringBuilder("<div style=\"font-family:sans-serif\">");
        foreach (var i in items)
        {
            var lasting = now - i.Since;
            text.AppendLine($"{Word(i.Kind)}: {i.Rule}");
            html.Append($"<h3>{Enc(Word(i.Kind))}: {Enc(i.Rule)}</h3><table>");
            void Row(string k, string? v)
            {
                if (string.IsNullOrEmpty(v)) return;
                text.AppendLine($"  {k}: {v}");
                html.Append($"<tr><td><b>{Enc(k)}</b></td><td>{Enc(v)}</td></tr>");
            }
            Row("state", i.Status);
            Row(i.Kind is NotificationKind.Resolved or NotificationKind.BrieflyDown ? "was down since" : "since", $"{i.Since:yyyy-MM-dd HH:mm:ss}Z ({Duration.Format(lasting < TimeSpan.Zero ? TimeSpan.Zero : TimeSpan.FromSeconds(Math.Floor(lasting.TotalSeconds)))})");
            Row(i.Kind == NotificationKind.Resolved ? "now" : "saw", i.Description);
            if (i.Restarts is { } restarts) Row("restarts", restarts.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (i.Incident is { } id) Row("incident", i.Kind == NotificationKind.Resolved ? $"#{id}" : $"#{id} (acknowledge: sentinel ack {id})");
            if (i.Suppressed is { Count: > 0 } s) Row("also down (depend on it, not alerted separately)", string.Join(", ", s));
            html.Append("</table>");
            if (i.Output is { Count: > 0 } output)
            {
                text.AppendLine("  output:");
                foreach (var line in output) text.AppendLine("    | " + line);
                html.Append($"<pre>{Enc(string.Join("\n", output))}</pre>");
            }
            text.AppendLine();
        }
        text.Append($"-- Sentinel {EngineInfo.Version} on {Host}");
        html.Append($"<p style=\"color:#888\">Sentinel {Enc(EngineInfo.Version)} on {Enc(Host)}</p></div>");

        var n = new Notification { Subject = subject, Text = text.ToString(), Html = html.ToString(), Short = shortText, Items = items, IsTest = test };
        if (template is null) return n;
        string Fill(string t) => t.Replace("{subject}", n.Subject).Replace("{text}", n.Text).Replace("{short}", n.Short)
            .Replace("{rule}", items.Count > 0 ? items[0].Rule : "").Replace("{kind}", items.Count > 0 ? items[0].Kind : "")
            .Replace("{status}", items.Count > 0 ? items[0].Status : "").Replace("{since}", items.Count > 0 ? items[0].Since.ToString("u") : "")
            .Replace("{description}", items.Count > 0 ? items[0].Description : "").Replace("{host}", Host).Replace("{count}", items.Count.ToString());
        return new Notification
        {
            Subject = template.Subject is { } s2 ? Fill(s2) : n.Subject,
            Text = template.Text is { } t2 ? Fill(t2) : n.Text,
            Html = template.Text is null ? n.Html : null,
            Short = template.Short is { } sh ? Fill(sh) : n.Short,
            Items = items,
            IsTest = test,
        };
    }

    private static string Enc(string s) => WebUtility.HtmlEncode(s);
}
