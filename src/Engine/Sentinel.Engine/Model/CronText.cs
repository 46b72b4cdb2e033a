using System.Text.RegularExpressions;

namespace Sentinel.Engine.Model;

/// <summary>
/// Accepts standard 5-field cron (<c>*/5 * * * *</c>, Sunday = 0), the <c>@hourly</c>-style macros, and Quartz
/// expressions with seconds (6 or 7 fields, Sunday = 1), and returns the Quartz form.
/// </summary>
internal static partial class CronText
{
    public static bool TryToQuartz(string text, out string quartz, out string error)
    {
        quartz = "";
        error = "";
        var expr = text.Trim() switch
        {
            "@yearly" or "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" or "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            var other => other,
        };
        var f = expr.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length == 5)
        {
            var dow = UnixDayNumber().Replace(f[4], m => (int.Parse(m.Value) % 7 + 1).ToString());
            f = ["0", f[0], f[1], f[2], f[3], dow];
        }
        else if (f.Length is not (6 or 7))
        {
            error = $"'{text}' is not a cron expression: write 5 fields (minute hour day-of-month month day-of-week, e.g. '*/5 * * * *') or 6-7 Quartz fields starting with seconds";
            return false;
        }
        if (f[3] is "*" or "?" && f[5] is "*" or "?") { f[3] = "*"; f[5] = "?"; }
        else if (f[5] is "*" or "?") f[5] = "?";
        else if (f[3] is "*" or "?") f[3] = "?";
        else
        {
            error = $"'{text}' sets both day-of-month and day-of-week: set one of them to '*'";
            return false;
        }
        quartz = string.Join(' ', f);
        try
        {
            _ = new Quartz.CronExpression(quartz);
            return true;
        }
        catch (FormatException ex)
        {
            error = $"'{text}' is not a valid cron expression: {ex.Message}";
            return false;
        }
    }

    [GeneratedRegex(@"(?<![/#\d])\d+")]
    private static partial Regex UnixDayNumber();
}
