
using Sentinel.Abstractions;
namespace Sentinel.TestPlugins.Throwing;
public sealed class ThrowingPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar) => throw new InvalidOperationException("the plugin is broken on purpose");
}
