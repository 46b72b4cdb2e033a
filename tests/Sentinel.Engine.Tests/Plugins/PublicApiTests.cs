using System.Reflection;
using Sentinel.Abstractions;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Plugins;

/// <summary>
/// The plugin contract's public API, as text, must equal src/Engine/Sentinel.Abstractions/PublicAPI.txt: a change to
/// the contract (which can break every plugin) is a visible diff in review. After an intended change, run the
/// tests with SENTINEL_UPDATE_PUBLIC_API=1 to rewrite the file, and say in the change why.
/// </summary>
public sealed class PublicApiTests
{
    private static readonly string ApiFile = Path.Combine(TestPaths.RepoRoot, "src", "Engine", "Sentinel.Abstractions", "PublicAPI.txt");

    [Fact]
    public void TheContractsPublicApi_IsTheTrackedOne()
    {
        var actual = Describe(typeof(IProbe).Assembly);
        if (Environment.GetEnvironmentVariable("SENTINEL_UPDATE_PUBLIC_API") == "1") File.WriteAllText(ApiFile, actual);
        File.Exists(ApiFile).Should().BeTrue($"{ApiFile} tracks the public API (create it with SENTINEL_UPDATE_PUBLIC_API=1)");
        var expected = File.ReadAllText(ApiFile).ReplaceLineEndings("\n");
        var added = actual.Split('\n').Except(expected.Split('\n')).ToList();
        var removed = expected.Split('\n').Except(actual.Split('\n')).ToList();
        (added.Count + removed.Count).Should().Be(0,
            $"the plugin contract changed (run with SENTINEL_UPDATE_PUBLIC_API=1 if intended):\n+ {string.Join("\n+ ", added)}\n- {string.Join("\n- ", removed)}");
    }

    internal static string Describe(Assembly assembly)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            var kind = type.IsInterface ? "interface" : type.IsEnum ? "enum" : type.IsValueType ? "struct" : type.IsAbstract && type.IsSealed ? "static class" : type.IsSealed ? "sealed class" : "class";
            lines.Add($"{kind} {Name(type)}" + (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) ? " : " + Name(b) : "")
                + string.Concat(type.GetInterfaces().Select(i => ", " + Name(i)).Order()));
            foreach (var m in type.GetMembers(flags).Where(m => m is not MethodInfo { IsSpecialName: true }))
            {
                lines.Add(m switch
                {
                    ConstructorInfo c => $"{Name(type)}.ctor({string.Join(", ", c.GetParameters().Select(p => Name(p.ParameterType)))})",
                    MethodInfo mi => $"{Name(type)}.{mi.Name}({string.Join(", ", mi.GetParameters().Select(p => Name(p.ParameterType)))}) -> {Name(mi.ReturnType)}",
                    PropertyInfo p => $"{Name(type)}.{p.Name} : {Name(p.PropertyType)} {{ {(p.GetMethod?.IsPublic == true ? "get; " : "")}{(p.SetMethod?.IsPublic == true ? (p.SetMethod.ReturnParameter.GetRequiredCustomModifiers().Any(x => x.Name == "IsExternalInit") ? "init; " : "set; ") : "")}}}",
                    FieldInfo f => $"{Name(type)}.{f.Name} : {Name(f.FieldType)}" + (f.IsLiteral ? $" = {f.GetRawConstantValue()}" : ""),
                    EventInfo e => $"{Name(type)}.{e.Name} event {Name(e.EventHandlerType!)}",
                    Type nested => $"{Name(type)}+{nested.Name}",
                    _ => $"{Name(type)}.{m.Name}",
                });
            }
        }
        return string.Join("\n", lines.Order(StringComparer.Ordinal)) + "\n";
    }

    private static string Name(Type t) => t.IsGenericType
        ? $"{t.Namespace}.{t.Name.Split('`')[0]}<{string.Join(", ", t.GetGenericArguments().Select(Name))}>"
        : t.IsGenericParameter ? t.Name : t.FullName ?? t.Name;
}
