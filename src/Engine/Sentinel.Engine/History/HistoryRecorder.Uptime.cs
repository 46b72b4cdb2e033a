namespace Sentinel.Engine.History;

// Uptime over the last day, week and 30 days: this node's whole counts of the recent hours, what uptime needs of the
// older ones (Past), and other nodes' counts in a cluster.
internal sealed partial class HistoryRecorder
{
    internal struct Tally
    {
        public int Checks, Down;
    }

    // Moves the written hours before the last one out of Hours, keeping what uptime needs of them (under the rule's lock).
    private static void Compact(RuleHistory h, long nowHour)
    {
        h.KeptFrom = Math.Max(h.KeptFrom, nowHour - 1);
        if (h.Hours.Count <= 2) return;
        List<long>? moved = null;
        foreach (var (hour, c) in h.Hours)
        {
            if (hour >= h.KeptFrom || h.DirtyHours.Contains(hour)) continue;
            (moved ??= []).Add(hour);
            if (hour <= h.PastTop - MemoryHours) continue; // older than 30 days
            var past = h.Past ??= new Tally[MemoryHours];
            if (hour > h.PastTop)
            {
                // The slots of the hours between (none counted here) held hours 30 days older.
                for (var y = Math.Max(h.PastTop + 1, hour - MemoryHours + 1); y < hour; y++) past[y % MemoryHours] = default;
                h.PastTop = hour;
            }
            past[hour % MemoryHours] = new Tally { Checks = (int)Math.Min(c.Checks, int.MaxValue), Down = (int)Math.Min(c.Down, int.MaxValue) };
        }
        if (moved is null) return;
        foreach (var hour in moved) h.Hours.Remove(hour);
        if (moved.Count > 8) h.Hours.TrimExcess(); // a month loaded at a start: its room goes too
    }

    /// <summary>How many hours of the rule's whole counts are in memory (the rest is in the store): for tests.</summary>
    internal int HoursHeld(string rule)
    {
        if (!_rules.TryGetValue(rule, out var h)) return 0;
        lock (h.Lock) return h.Hours.Count;
    }

    public UptimeView Uptime(string rule)
    {
        if (!_rules.TryGetValue(rule, out var h)) return new UptimeView(null, null, null);
        var nowHour = _time.GetUtcNow().ToUnixTimeMilliseconds() / HistoryMath.HourMs;
        long dc, dd, wc, wd, mc, md;
        lock (h.Lock)
        {
            if (h.UptimeHour != nowHour)
            {
                h.DayChecks = h.DayDown = h.WeekChecks = h.WeekDown = h.MonthChecks = h.MonthDown = h.OthersNowChecks = h.OthersNowDown = 0;
                foreach (var (hour, c) in h.Hours) Sum(h, nowHour - hour, c.Checks, c.Down);
                if (h.Past is { } past)
                    for (var i = 0; i < MemoryHours; i++)
                    {
                        var hour = h.PastTop - (h.PastTop - i) % MemoryHours; // the hour slot i holds
                        Sum(h, nowHour - hour, past[i].Checks, past[i].Down);
                    }
                // Other nodes' counts change only when they are read again, which resets these sums: their current hour is summed too.
                if (h.Others is { } others)
                    foreach (var ((_, hour), c) in others)
                        if (nowHour == hour) { h.OthersNowChecks += c.Checks; h.OthersNowDown += c.Down; }
                        else Sum(h, nowHour - hour, c.Checks, c.Down);
                h.UptimeHour = nowHour;
            }
            var current = h.Hours.GetValueOrDefault(nowHour);
            var (nowChecks, nowDown) = (current.Checks + h.OthersNowChecks, current.Down + h.OthersNowDown);
            (dc, dd) = (h.DayChecks + nowChecks, h.DayDown + nowDown);
            (wc, wd) = (h.WeekChecks + nowChecks, h.WeekDown + nowDown);
            (mc, md) = (h.MonthChecks + nowChecks, h.MonthDown + nowDown);
        }
        static double? Share(long checks, long down) => checks == 0 ? null : (double)(checks - down) / checks;
        return new UptimeView(Share(dc, dd), Share(wc, wd), Share(mc, md));
    }

    private static void Sum(RuleHistory h, long age, long checks, long down)
    {
        if (age < 1 || age >= 30 * 24) return; // the current hour is added as it is now
        h.MonthChecks += checks; h.MonthDown += down;
        if (age < 7 * 24) { h.WeekChecks += checks; h.WeekDown += down; }
        if (age < 24) { h.DayChecks += checks; h.DayDown += down; }
    }
}
