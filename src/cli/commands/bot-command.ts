import type { Command } from 'commander';
import type { BotOptions } from './bot.js';

/**
 * `sotto bot`: the definition only; bot.ts (capture, live client, configuration) is loaded when
 * it runs. Exit statuses are listed in bot.ts.
 */
export function registerBotCommand(program: Command): void {
  program
    .command('bot')
    .description('stream audio into a new live recording and print its live transcript')
    .requiredOption('--api <url>', "the server's public URL, e.g. https://sotto.example.com")
    .option('--file <file>', 'audio file in any supported format (decoded to 16 kHz mono)')
    .option('--stdin', 'read raw PCM from stdin: signed 16-bit little-endian, 16 kHz, mono, no header')
    .option('--mic', 'record from the default microphone with arecord or sox')
    .option('--title <title>', 'title of the recording')
    .option('--speaker <name>', 'label of this stream in the transcript (default "Speaker 1")')
    .option('--token <token>', 'access token (prefer SOTTO_TOKEN: arguments are visible in ps)')
    .option('--ca <file>', "PEM file of the CA (or self-signed certificate) of the server's certificate")
    .option('--insecure', 'do not verify the server certificate (testing only)')
    .option('--fast', 'send as fast as the server acknowledges instead of in real time')
    .action(async (opts: BotOptions) => {
      const { runBotCommand } = await import('./bot.js');
      await runBotCommand(opts);
    });
}
