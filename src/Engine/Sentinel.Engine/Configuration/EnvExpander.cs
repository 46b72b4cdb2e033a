using System.Text;

namespace Sentinel.Engine.Configuration;

/// <summary>
/// Expands <c>${NAME}</c> and <c>${NAME:-default}</c> from the environment in configuration values;
/// <c>$$</c> stands for a literal <c>$</c>.
/// </summary>
internal static class EnvExpander
{
    public static string Expand(string value, Func<string, string?> lookup, out string? error)
    {
        error = null;
        if (!value.Contains('$')) return value;
        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c != '$' || i + 1 >= value.Length) { sb.Append(c); continue; }
            if (value[i + 1] == '$') { sb.Append('$'); i++; continue; }
            if (value[i + 1] != '{') { sb.Append(c); continue; }
            var end = value.IndexOf('}', i + 2);
            if (end < 0)
            {
                error = $"unterminated '${{' in '{value}': close it with '}}', or write '$$' for a literal '$'";
                return value;
            }
            var expr = value[(i + 2)..end];
            string name = expr, fallback = "";
            var hasDefault = false;
            var sep = expr.IndexOf(":-", StringComparison.Ordinal);
            if (sep >= 0) { name = expr[..sep]; fallback = expr[(sep + 2)..]; hasDefault = true; }
            if (name.Length == 0 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
            {
                error = $"'${{{expr}}}' is not a valid variable reference: write ${{NAME}} or ${{NAME:-default}}";
                return value;
            }
            var resolved = lookup(name);
            if (string.IsNullOrEmpty(resolved))
            {
                if (!hasDefault)
                {
                    error ??= $"environment variable '{name}' is not set: set it, or give a default with ${{{name}:-value}}";
                    resolved = "";
                }
                else resolved = fallback;
            }
            sb.Append(resolved);
            i = end;
        }
        return sb.ToString();
    }
}
