using System.Globalization;
using System.Text.RegularExpressions;

namespace Sentinel.Abstractions;

/// <summary>
/// A size in bytes, written in configuration as <c>512MB</c>, <c>1.5GiB</c>, <c>100kB</c> or <c>4096</c>.
/// Decimal units (kB, MB, GB, TB) are powers of 1000, binary units (KiB, MiB, GiB, TiB) powers of 1024.
/// </summary>
/// <param name="Bytes">The number of bytes.</param>
public readonly partial record struct ByteSize(long Bytes) : IComparable<ByteSize>
{
    private static readonly (string Unit, long Factor)[] Units =
    [
        ("b", 1), ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("kib", 1L << 10), ("mib", 1L << 20), ("gib", 1L << 30), ("tib", 1L << 40),
    ];

    /// <summary>The unit names accepted by <see cref="TryParse"/>.</summary>
    public static string UnitList => "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB";

    /// <summary>Parses a size such as <c>512MB</c>; returns false for anything else.</summary>
    public static bool TryParse(string? text, out ByteSize size)
    {
        size = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var m = SizePattern().Match(text.Trim());
        if (!m.Success) return false;
        if (!decimal.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return false;
        var unit = m.Groups[2].Value.ToLowerInvariant();
        long factor = 1;
        if (unit.Length > 0)
        {
            var found = Array.FindIndex(Units, u => u.Unit == unit);
            if (found < 0) return false;
            factor = Units[found].Factor;
        }
        var bytes = number * factor;
        if (bytes > long.MaxValue) return false;
        size = new ByteSize((long)decimal.Round(bytes));
        return true;
    }

    /// <summary>Parses a size or throws <see cref="FormatException"/> naming the accepted units.</summary>
    public static ByteSize Parse(string text) => TryParse(text, out var s)
        ? s
        : throw new FormatException($"'{text}' is not a size: write a number with a unit ({UnitList}), e.g. 512MB");

    /// <inheritdoc />
    public int CompareTo(ByteSize other) => Bytes.CompareTo(other.Bytes);

    /// <summary>Compares two sizes.</summary>
    public static bool operator <(ByteSize a, ByteSize b) => a.Bytes < b.Bytes;

    /// <summary>Compares two sizes.</summary>
    public static bool operator >(ByteSize a, ByteSize b) => a.Bytes > b.Bytes;

    /// <summary>Compares two sizes.</summary>
    public static bool operator <=(ByteSize a, ByteSize b) => a.Bytes <= b.Bytes;

    /// <summary>Compares two sizes.</summary>
    public static bool operator >=(ByteSize a, ByteSize b) => a.Bytes >= b.Bytes;

    /// <summary>The size in the largest binary unit that keeps it at or above 1, e.g. <c>1.5MiB</c>.</summary>
    public override string ToString()
    {
        string[] names = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = Bytes;
        var i = 0;
        while (Math.Abs(value) >= 1024 && i < names.Length - 1) { value /= 1024; i++; }
        return i == 0 ? $"{Bytes}B" : value.ToString("0.##", CultureInfo.InvariantCulture) + names[i];
    }

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$")]
    private static partial Regex SizePattern();
}
