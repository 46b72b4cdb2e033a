using Mono.Cecil;
using Mono.Cecil.Cil;
using Sentinel.Engine.Tests.Support;
using Xunit.Abstractions;

namespace Sentinel.Engine.Tests.Architecture;

/// <summary>
/// The engine's folders depend on each other one way only (docs/architecture.md draws the graph), and no file in it
/// grows past 400 lines. The graph is read from the compiled engine with Mono.Cecil: every type a type's members,
/// signatures, attributes and method bodies (closures and state machines included) use.
/// </summary>
public sealed class ArchitectureTests(ITestOutputHelper output)
{
    private const string Root = "Sentinel.Engine";
    private const int MaxLines = 400;

    /// <summary>Folder → folder it uses → one example of the use ("Type uses Type"), read from the assembly.</summary>
    public static Dictionary<string, Dictionary<string, string>> Graph()
    {
        using var module = ModuleDefinition.ReadModule(typeof(SentinelEngine).Assembly.Location);
        var graph = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var type in module.GetTypes())
        {
            if (Folder(type) is not { } from) continue;
            foreach (var used in Uses(type))
            {
                if (Folder(used) is not { } to || to == from) continue;
                var edges = graph.TryGetValue(from, out var e) ? e : graph[from] = new(StringComparer.Ordinal);
                edges.TryAdd(to, $"{Top(type).FullName} uses {Top(used).FullName}");
            }
        }
        return graph;
    }

    [Fact]
    public void TheEngineFolders_DependOnEachOtherOneWay_WithNoCycle()
    {
        var graph = Graph();
        foreach (var (from, edges) in graph.OrderBy(g => g.Key, StringComparer.Ordinal))
            output.WriteLine($"{from} → {string.Join(", ", edges.Keys.Order(StringComparer.Ordinal))}");
        var twoWay = (from a in graph
                      from b in a.Value.Keys
                      where string.CompareOrdinal(a.Key, b) < 0 && graph.TryGetValue(b, out var back) && back.ContainsKey(a.Key)
                      select $"{a.Key} ⇄ {b}: {a.Value[b]}; {graph[b][a.Key]}").ToList();
        twoWay.Should().BeEmpty("each folder uses the ones below it only (docs/architecture.md):\n" + string.Join("\n", twoWay));
        var cycles = Cycles(graph).Select(c => string.Join(" → ", c.Append(c[0])) + ": " + string.Join("; ", c.Select((f, i) => graph[f][c[(i + 1) % c.Count]]))).ToList();
        cycles.Should().BeEmpty("a longer cycle is a two-way dependency too:\n" + string.Join("\n", cycles));
    }

    // One cycle through each group of folders that can reach each other (found by walking from each folder).
    private static List<List<string>> Cycles(Dictionary<string, Dictionary<string, string>> graph)
    {
        var result = new List<List<string>>();
        var covered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var start in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (covered.Contains(start)) continue;
            // Breadth-first back to start: the shortest cycle through it, if any.
            var parent = new Dictionary<string, string>(StringComparer.Ordinal);
            var queue = new Queue<string>([start]);
            List<string>? cycle = null;
            while (queue.Count > 0 && cycle is null)
            {
                var at = queue.Dequeue();
                foreach (var next in graph.GetValueOrDefault(at)?.Keys ?? Enumerable.Empty<string>())
                {
                    if (next == start)
                    {
                        cycle = [at];
                        while (cycle[0] != start) cycle.Insert(0, parent[cycle[0]]);
                        break;
                    }
                    if (parent.TryAdd(next, at)) queue.Enqueue(next);
                }
            }
            if (cycle is null) continue;
            covered.UnionWith(cycle);
            result.Add(cycle);
        }
        return result;
    }

    [Fact]
    public void NoFileOfTheEngine_IsOver400Lines()
    {
        var source = Path.Combine(TestPaths.RepoRoot, "src", "Engine", "Sentinel.Engine");
        var sizes = Directory.GetFiles(source, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(source, f), f => File.ReadLines(f).Count(), StringComparer.Ordinal);
        var tooLong = sizes.Where(f => f.Value > MaxLines).OrderByDescending(f => f.Value)
            .Select(f => $"{f.Key}: {f.Value} lines").ToList();
        tooLong.Should().BeEmpty($"a file over {MaxLines} lines holds more than one thing: split it along its seams:\n" + string.Join("\n", tooLong));
    }

    [Fact]
    public void TheEngineClass_IsCompositionOnly()
    {
        // SentinelEngine.cs composes the parts and orders their start and stop; a check's path, a config's apply, the
        // views and the hosts' calls live elsewhere (Runtime/, and the engine's partial files over the parts).
        var root = Path.Combine(TestPaths.RepoRoot, "src", "Engine", "Sentinel.Engine", "SentinelEngine.cs");
        File.ReadLines(root).Count().Should().BeLessThanOrEqualTo(200, "SentinelEngine.cs is composition and start/stop order only");
    }

    // The top folder of the engine a type is declared in ("(root)" for Sentinel.Engine itself); null outside the engine.
    private static string? Folder(TypeReference type)
    {
        var ns = Top(type).Namespace;
        if (type.Scope is not ModuleDefinition && type.Scope?.Name != Root) return null;
        if (ns == Root) return "(root)";
        return ns.StartsWith(Root + ".", StringComparison.Ordinal) ? ns[(Root.Length + 1)..].Split('.')[0] : null;
    }

    private static TypeReference Top(TypeReference type)
    {
        while (type.DeclaringType is { } outer) type = outer;
        return type;
    }

    private static IEnumerable<TypeReference> Uses(TypeDefinition type)
    {
        var found = new List<TypeReference>();
        void Add(TypeReference? t)
        {
            switch (t)
            {
                case null: return;
                case GenericInstanceType g:
                    Add(g.ElementType);
                    foreach (var a in g.GenericArguments) Add(a);
                    return;
                case TypeSpecification s:
                    Add(s.ElementType);
                    return;
                case GenericParameter: return;
                default: found.Add(t); return;
            }
        }
        void Attributes(ICustomAttributeProvider p)
        {
            foreach (var a in p.CustomAttributes)
            {
                Add(a.AttributeType);
                foreach (var arg in a.ConstructorArguments) if (arg.Value is TypeReference tr) Add(tr);
            }
        }
        void Method(MethodReference m)
        {
            Add(m.DeclaringType);
            Add(m.ReturnType);
            foreach (var p in m.Parameters) Add(p.ParameterType);
            if (m is GenericInstanceMethod gm) foreach (var a in gm.GenericArguments) Add(a);
        }

        Add(type.BaseType);
        Attributes(type);
        foreach (var i in type.Interfaces) Add(i.InterfaceType);
        foreach (var f in type.Fields) { Add(f.FieldType); Attributes(f); }
        foreach (var p in type.Properties) { Add(p.PropertyType); Attributes(p); }
        foreach (var e in type.Events) Add(e.EventType);
        foreach (var m in type.Methods)
        {
            Method(m);
            Attributes(m);
            if (!m.HasBody) continue;
            foreach (var v in m.Body.Variables) Add(v.VariableType);
            foreach (var ins in m.Body.Instructions)
            {
                switch (ins.Operand)
                {
                    case TypeReference t: Add(t); break;
                    case MethodReference mr: Method(mr); break;
                    case FieldReference fr: Add(fr.DeclaringType); Add(fr.FieldType); break;
                }
            }
        }
        return found;
    }
}
