using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Email;

/// <summary>
/// Sends one message to all recipients. A refused recipient or sender, or refused credentials, is permanent;
/// a connection or protocol failure is transient (the engine retries, then fails over).
/// </summary>
internal sealed class EmailNotifier(EmailNotifierOptions options) : IAction
{
    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var n = context.Notification ?? throw new ActionFailedException("email is a notification channel: use it under notify:", permanent: true);
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(options.From!));
        foreach (var to in options.To) message.To.Add(MailboxAddress.Parse(to));
        foreach (var cc in options.Cc) message.Cc.Add(MailboxAddress.Parse(cc));
        message.Subject = n.Subject;
        message.Headers.Add("X-Sentinel", n.IsTest ? "test" : string.Join(",", n.Items.Select(i => $"{i.Rule}:{i.Kind}").Distinct()));
        var body = new BodyBuilder { TextBody = n.Text };
        if (options.Html && n.Html is not null) body.HtmlBody = n.Html;
        message.Body = body.ToMessageBody();

        using var client = new SmtpClient { Timeout = (int)options.Timeout.TotalMilliseconds };
        if (!options.VerifyTls) client.ServerCertificateValidationCallback = (_, _, _, _) => true;
        var (security, port) = options.Tls switch
        {
            SmtpTls.Ssl => (SecureSocketOptions.SslOnConnect, options.Port ?? 465),
            SmtpTls.None => (SecureSocketOptions.None, options.Port ?? 25),
            _ => (SecureSocketOptions.StartTls, options.Port ?? 587),
        };
        try
        {
            await client.ConnectAsync(options.Host!, port, security, cancellationToken);
            if (options.Username is not null) await client.AuthenticateAsync(options.Username, options.Password ?? "", cancellationToken);
            var answer = await client.SendAsync(message, cancellationToken);
            context.Output.WriteLine($"{options.Host}:{port} accepted the message for {string.Join(", ", options.To.Concat(options.Cc))}: {answer}");
            await client.DisconnectAsync(true, cancellationToken);
        }
        catch (AuthenticationException ex)
        {
            throw new ActionFailedException($"{options.Host}:{port} refused the credentials of '{options.Username}': {ex.Message}", permanent: true, ex);
        }
        catch (SmtpCommandException ex) when (ex.ErrorCode is SmtpErrorCode.RecipientNotAccepted or SmtpErrorCode.SenderNotAccepted)
        {
            var who = ex.ErrorCode == SmtpErrorCode.SenderNotAccepted ? $"sender {ex.Mailbox}" : $"recipient {ex.Mailbox}";
            throw new ActionFailedException($"{options.Host}:{port} refused {who}: {(int)ex.StatusCode} {ex.Message}", permanent: true, ex);
        }
        catch (Exception ex) when (ex is SmtpCommandException or SmtpProtocolException or IOException or System.Net.Sockets.SocketException or ServiceNotConnectedException)
        {
            context.Output.WriteLine($"{options.Host}:{port}: {ex.Message}");
            throw new ActionFailedException($"sending through {options.Host}:{port} failed: {ex.Message}", permanent: false, ex);
        }
    }
}
