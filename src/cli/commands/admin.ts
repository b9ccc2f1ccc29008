import type { Services } from '../../app.js';
import { randomToken } from '../../crypto/random.js';
import { AppError } from '../../domain/errors.js';
import { email as emailSchema, personName } from '../../http/routes/org/schema.js';
import { CliError } from '../cli-error.js';
import { stdout, type Print } from '../output.js';

/**
 * `sotto admin create-support-user`: platform support accounts belong to no organization and see
 * nothing until an org grants access. The password is typed (hidden) or generated; a generated
 * one is printed once and stored only as its argon2id hash.
 */
export interface CreateSupportUserOptions {
  email: string;
  name: string;
  /** Omitted: a random password is generated and printed once. */
  password?: string | undefined;
}

export interface CreatedSupportUser {
  id: string;
  email: string;
  generatedPassword: string | undefined;
}

export async function createSupportUser(
  services: Services,
  opts: CreateSupportUserOptions,
  print: Print = stdout,
): Promise<CreatedSupportUser> {
  const email = emailSchema.safeParse(opts.email);
  if (!email.success) throw new CliError('--email: not a valid email address');
  const name = personName.safeParse(opts.name);
  if (!name.success) throw new CliError('--name: 1 to 200 characters, no control characters');
  // 24 base64url characters: 144 bits.
  const generatedPassword = opts.password === undefined ? randomToken(18) : undefined;
  let user;
  try {
    user = await services.support.createSupportUser({
      email: email.data,
      name: name.data,
      password: opts.password ?? generatedPassword!,
    });
  } catch (err) {
    if (err instanceof AppError && err.status < 500) throw new CliError(err.message);
    throw err;
  }
  print(`Created support user ${user.email} (id ${user.id}).`);
  if (generatedPassword) {
    print(`Password (shown once, store it in your password manager now): ${generatedPassword}`);
  }
  print('This account sees no organization until that organization grants support access.');
  return { id: user.id, email: user.email, generatedPassword };
}

/** Reads a line from the terminal without echoing it. */
export function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY)
    return Promise.reject(new CliError('cannot prompt for a password: stdin is not a terminal'));
  process.stdout.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stdout.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new CliError('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    stdin.on('data', onData);
  });
}

async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!line) throw new CliError('--password-stdin: no password on stdin');
  return line;
}

/** Typed twice on a terminal; empty means "generate one". */
async function promptPassword(): Promise<string | undefined> {
  const first = await readHidden('Password (12+ characters; leave empty to generate one): ');
  if (first === '') return undefined;
  const second = await readHidden('Repeat the password: ');
  if (first !== second) throw new CliError('the passwords do not match');
  return first;
}

export interface CreateSupportUserFlags {
  email: string;
  name: string;
  passwordStdin?: boolean | undefined;
  generatePassword?: boolean | undefined;
}

/** The command's action (admin-command.ts): the password first, then the database. */
export async function runCreateSupportUser(
  opts: CreateSupportUserFlags,
  boot: () => Promise<Services>,
): Promise<void> {
  let password: string | undefined;
  if (opts.passwordStdin) password = await readPasswordFromStdin();
  else if (!opts.generatePassword && process.stdin.isTTY) password = await promptPassword();
  await createSupportUser(await boot(), { email: opts.email, name: opts.name, password });
}
