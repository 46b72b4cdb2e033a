using Sentinel.Abstractions;

namespace Sentinel.Plugins.Email;

public sealed class EmailPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
        => registrar.AddAction<EmailNotifier, EmailNotifierOptions>("email", "Email through an SMTP server (MailKit): TLS, STARTTLS or none; text and HTML bodies.");
}
