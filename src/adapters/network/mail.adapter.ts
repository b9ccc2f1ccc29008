import nodemailer from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/**
 * Outgoing email over SMTP (nodemailer). Messages may carry secrets (invitation links), so
 * nodemailer's own logger stays off and nothing here logs a message body.
 */
export interface Mailer {
  readonly enabled: boolean;
  send(message: MailMessage): Promise<void>;
  close(): void;
}

const disabledMailer: Mailer = {
  enabled: false,
  send: async () => {
    throw new Error('SMTP is not configured');
  },
  close: () => undefined,
};

export function createMailer(smtpUrl: string | undefined, from: string): Mailer {
  if (!smtpUrl) return disabledMailer;
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    logger: false,
    debug: false,
    // A slow mail server must not hold a request for minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    enabled: true,
    async send(message) {
      await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text });
    },
    close: () => transport.close(),
  };
}
