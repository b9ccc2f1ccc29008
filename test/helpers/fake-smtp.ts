import { createServer, type AddressInfo, type Server } from 'node:net';

export interface FakeSmtp {
  url: string;
  messages: string[];
  close: () => Promise<void>;
}

/**
 * A minimal SMTP server (enough for nodemailer, no TLS/AUTH) that keeps what it receives. With
 * `refuse`, a recipient it matches gets `550` at RCPT TO, as a real server says "no such mailbox"
 * (the sender then has no recipient left and the send fails).
 */
export async function fakeSmtp(opts: { refuse?: (rcpt: string) => boolean } = {}): Promise<FakeSmtp> {
  const messages: string[] = [];
  const server: Server = createServer((sock) => {
    sock.setEncoding('utf8');
    let inData = false;
    let buf = '';
    let msg = '';
    sock.write('220 fake.test ESMTP\r\n');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            messages.push(msg);
            msg = '';
            sock.write('250 queued\r\n');
          } else msg += `${line.startsWith('..') ? line.slice(1) : line}\n`;
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === 'EHLO') sock.write('250-fake.test\r\n250 8BITMIME\r\n');
        else if (cmd === 'RCPT' && opts.refuse?.(/<([^>]*)>/.exec(line)?.[1] ?? ''))
          sock.write('550 5.1.1 mailbox unavailable\r\n');
        else if (cmd === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (cmd === 'QUIT') sock.end('221 bye\r\n');
        else sock.write('250 ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A received message's text with quoted-printable soft breaks and escapes undone. */
export function mailText(raw: string): string {
  if (!/content-transfer-encoding: quoted-printable/i.test(raw)) return raw;
  return raw
    .replace(/=\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
