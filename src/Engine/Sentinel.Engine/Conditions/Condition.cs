using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;

namespace Sentinel.Engine.Conditions;

/// <summary>The outcome of judging one condition against what a probe measured.</summary>
internal readonly record struct ConditionOutcome(bool Passed, string Explanation);

/// <summary>
/// One rule condition: <c>path operator literal</c>, e.g. <c>status == 200</c>, <c>body.status == ok</c>,
/// <c>response-time &lt; 500ms</c>, <c>rss &lt;= 512MB</c>, <c>body.version =~ ^2\.</c>, <c>tags contains prod</c>.
/// Operators: <c>== != &lt; &lt;= &gt; &gt;= =~ !~ contains !contains</c>. Literals: numbers, durations, sizes,
/// booleans, <c>null</c>, quoted or bare strings.
/// </summary>
internal sealed class Condition
{
    private static readonly string[] Operators = ["==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!contains", "contains"];

    private Condition(string text, string path, string op, Literal literal)
    {
        Text = text;
        Path = path;
        Operator = op;
        Value = literal;
    }

    public string Text { get; }
    public string Path { get; }
    public string Operator { get; }
    internal Literal Value { get; }

    /// <summary>Parses a condition; on failure gives the message and the 0-based column of the problem.</summary>
    public static bool TryParse(string text, out Condition? condition, out string error, out int column)
    {
        condition = null;
        error = "";
        column = 0;
        var i = 0;
        while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        var pathStart = i;
        while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] is '_' or '-' or '.' or '[' or ']')) i++;
        var path = text[pathStart..i];
        if (path.Length == 0 || !char.IsLetter(path[0]))
        {
            (error, column) = ("a condition starts with the name of a measured value, e.g. 'status == 200'", pathStart);
            return false;
        }
        while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        var op = Operators.FirstOrDefault(o => string.CompareOrdinal(text, i, o, 0, o.Length) == 0
            && (char.IsLetter(o[^1]) ? i + o.Length >= text.Length || char.IsWhiteSpace(text[i + o.Length]) : true));
        if (op is null)
        {
            var found = i < text.Length ? $"'{text[i..].Split(' ')[0]}'" : "the end";
            (error, column) = ($"expected an operator ({string.Join(", ", Operators.Reverse())}) after '{path}', found {found}", i);
            return false;
        }
        i += op.Length;
        while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        var literalStart = i;
        var rest = text[i..].TrimEnd();
        if (rest.Length == 0)
        {
            (error, column) = ($"expected a value after '{op}', e.g. '{path} {op} 200'", literalStart);
            return false;
        }
        if (!Literal.TryParse(rest, op is "=~" or "!~", out var literal, out var literalError))
        {
            (error, column) = (literalError, literalStart);
            return false;
        }
        condition = new Condition(text.Trim(), path, op, literal!);
        return true;
    }

    public static Condition Parse(string text) => TryParse(text, out var c, out var e, out var col)
        ? c!
        : throw new FormatException($"{e} (at column {col + 1})");

    public ConditionOutcome Evaluate(IReadOnlyDictionary<string, object>? data)
    {
        var found = Resolve(data, Path, out var actual);
        if (!found || actual is null || actual is JsonElement { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined })
        {
            var isNull = Value.Kind == LiteralKind.Null;
            var passed = Operator switch { "==" => isNull, "!=" => !isNull, "!contains" or "!~" => true, _ => false };
            return new(passed, passed ? Text : $"{Text} failed: '{Path}' was {(found ? "null" : "not measured")}");
        }
        bool? result = Operator switch
        {
            "=~" => Value.Regex!.IsMatch(AsString(actual)),
            "!~" => !Value.Regex!.IsMatch(AsString(actual)),
            "contains" => Contains(actual),
            "!contains" => !Contains(actual),
            _ => Compare(actual) is { } cmp ? Operator switch
            {
                "==" => cmp == 0,
                "!=" => cmp != 0,
                "<" => cmp < 0,
                "<=" => cmp <= 0,
                ">" => cmp > 0,
                ">=" => cmp >= 0,
                _ => null,
            } : null,
        };
        if (result is null)
            return new(Operator == "!=", $"{Text} {(Operator == "!=" ? "passed" : "failed")}: '{Path}' is {Show(actual)}, which cannot be compared with {Value.Describe()}");
        return new(result.Value, result.Value ? Text : $"{Text} failed: '{Path}' is {Show(actual)}");
    }

    private bool Contains(object actual)
    {
        var needle = Value.Text;
        if (actual is JsonElement { ValueKind: JsonValueKind.Array } arr)
            return arr.EnumerateArray().Any(e => AsString(e) == needle);
        if (actual is IEnumerable list and not string)
            return list.Cast<object?>().Any(e => e is not null && AsString(e) == needle);
        return AsString(actual).Contains(needle, StringComparison.Ordinal);
    }

    private int? Compare(object actual)
    {
        switch (Value.Kind)
        {
            case LiteralKind.Number:
                return AsDouble(actual) is { } d ? d.CompareTo(Value.Number) : null;
            case LiteralKind.Duration:
                if (actual is TimeSpan ts) return ts.CompareTo(Value.Duration);
                if (actual is string s && Duration.TryParse(s, out var parsed)) return parsed.CompareTo(Value.Duration);
                return AsDouble(actual) is { } ms ? ms.CompareTo(Value.Duration.TotalMilliseconds) : null;
            case LiteralKind.Size:
                if (actual is ByteSize bs) return bs.Bytes.CompareTo(Value.Size.Bytes);
                return AsDouble(actual) is { } bytes ? bytes.CompareTo(Value.Size.Bytes) : null;
            case LiteralKind.Boolean:
                var b = actual switch
                {
                    bool x => x,
                    JsonElement { ValueKind: JsonValueKind.True } => true,
                    JsonElement { ValueKind: JsonValueKind.False } => false,
                    string str when bool.TryParse(str, out var y) => y,
                    _ => (bool?)null,
                };
                return b is null ? null : b.Value.CompareTo(Value.Boolean);
            case LiteralKind.Null:
                return 1;
            default:
                return string.CompareOrdinal(AsString(actual), Value.Text);
        }
    }

    internal static bool Resolve(IReadOnlyDictionary<string, object>? data, string path, out object? value)
    {
        value = null;
        if (data is null) return false;
        if (data.TryGetValue(path, out value)) return true;
        var segments = Segments(path);
        object? current = data;
        foreach (var seg in segments)
        {
            if (!Step(current, seg, out current)) return false;
        }
        value = current;
        return true;
    }

    private static List<string> Segments(string path)
    {
        var result = new List<string>();
        foreach (var part in path.Split('.'))
        {
            var p = part;
            var bracket = p.IndexOf('[');
            if (bracket < 0) { result.Add(p); continue; }
            if (bracket > 0) result.Add(p[..bracket]);
            foreach (Match m in Regex.Matches(p[bracket..], @"\[(\d+)\]")) result.Add(m.Groups[1].Value);
        }
        return result;
    }

    private static bool Step(object? current, string segment, out object? next)
    {
        next = null;
        switch (current)
        {
            case JsonElement { ValueKind: JsonValueKind.Object } obj:
                if (obj.TryGetProperty(segment, out var prop)) { next = prop; return true; }
                return false;
            case JsonElement { ValueKind: JsonValueKind.Array } arr when int.TryParse(segment, out var idx):
                if (idx < arr.GetArrayLength()) { next = arr[idx]; return true; }
                return false;
            case IReadOnlyDictionary<string, object> rod:
                return rod.TryGetValue(segment, out next);
            case IDictionary<string, object> d:
                return d.TryGetValue(segment, out next);
            case IDictionary<string, string> ds:
                if (ds.TryGetValue(segment, out var sv)) { next = sv; return true; }
                return false;
            case IList list when int.TryParse(segment, out var li):
                if (li < list.Count) { next = list[li]; return true; }
                return false;
            default:
                return false;
        }
    }

    internal static double? AsDouble(object value) => value switch
    {
        int i => i,
        long l => l,
        double d => d,
        float f => f,
        decimal m => (double)m,
        short s => s,
        uint u => u,
        ulong ul => ul,
        byte b => b,
        ByteSize bs => bs.Bytes,
        TimeSpan ts => ts.TotalMilliseconds,
        JsonElement { ValueKind: JsonValueKind.Number } n => n.GetDouble(),
        JsonElement { ValueKind: JsonValueKind.String } js when double.TryParse(js.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
        string str when double.TryParse(str, NumberStyles.Float, CultureInfo.InvariantCulture, out var p2) => p2,
        _ => null,
    };

    internal static string AsString(object value) => value switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        TimeSpan ts => Duration.Format(ts),
        JsonElement { ValueKind: JsonValueKind.String } js => js.GetString() ?? "",
        JsonElement je => je.GetRawText(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Show(object value)
    {
        var s = AsString(value);
        if (s.Length > 80) s = s[..77] + "...";
        return value is string or JsonElement { ValueKind: JsonValueKind.String } ? $"'{s}'" : s;
    }
}

internal enum LiteralKind { String, Number, Duration, Size, Boolean, Null }

internal sealed partial class Literal
{
    public LiteralKind Kind { get; private init; }
    public string Text { get; private init; } = "";
    public double Number { get; private init; }
    public TimeSpan Duration { get; private init; }
    public ByteSize Size { get; private init; }
    public bool Boolean { get; private init; }
    public Regex? Regex { get; private init; }

    public string Describe() => Kind switch
    {
        LiteralKind.String => $"the text '{Text}'",
        LiteralKind.Number => "a number",
        LiteralKind.Duration => "a duration",
        LiteralKind.Size => "a size",
        LiteralKind.Boolean => "a boolean",
        _ => "null",
    };

    public static bool TryParse(string text, bool isRegex, out Literal? literal, out string error)
    {
        literal = null;
        error = "";
        var value = text;
        var quoted = false;
        if (text.Length >= 2 && (text[0] is '"' or '\'') && text[^1] == text[0])
        {
            value = Unescape(text[1..^1]);
            quoted = true;
        }
        else if (text[0] is '"' or '\'')
        {
            error = $"unterminated string {text}: close it with {text[0]}";
            return false;
        }
        if (isRegex)
        {
            try
            {
                literal = new Literal { Kind = LiteralKind.String, Text = value, Regex = new Regex(value, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(200)) };
                return true;
            }
            catch (ArgumentException ex)
            {
                error = $"invalid regular expression '{value}': {ex.Message}";
                return false;
            }
        }
        if (quoted) { literal = new Literal { Kind = LiteralKind.String, Text = value }; return true; }
        if (value[0] is '=' or '<' or '>' or '!' or '~')
        {
            error = $"expected a value, found '{value}' (one operator per condition; quote text that starts with '{value[0]}')";
            return false;
        }
        if (value is "true" or "false") { literal = new Literal { Kind = LiteralKind.Boolean, Boolean = value == "true", Text = value }; return true; }
        if (value == "null") { literal = new Literal { Kind = LiteralKind.Null, Text = value }; return true; }
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n)) { literal = new Literal { Kind = LiteralKind.Number, Number = n, Text = value }; return true; }
        if (NumberWithUnit().IsMatch(value))
        {
            if (Sentinel.Abstractions.Duration.TryParse(value, out var d)) { literal = new Literal { Kind = LiteralKind.Duration, Duration = d, Text = value }; return true; }
            if (ByteSize.TryParse(value, out var s)) { literal = new Literal { Kind = LiteralKind.Size, Size = s, Text = value }; return true; }
            error = $"'{value}' has an unknown unit: durations take us, ms, s, m, h, d; sizes take {ByteSize.UnitList} (quote it to compare as text)";
            return false;
        }
        literal = new Literal { Kind = LiteralKind.String, Text = value };
        return true;
    }

    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 1 < s.Length) { sb.Append(s[++i]); continue; }
            sb.Append(s[i]);
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"^\d+(\.\d+)?[a-zA-Zµ]+(\d+(\.\d+)?[a-zA-Zµ]+)*$")]
    private static partial Regex NumberWithUnit();
}
