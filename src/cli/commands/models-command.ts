import type { Command } from 'commander';
import type { ModelService } from '../../services/transcription/model.service.js';

/** Builds the ModelService a subcommand uses (tests hand in one over a local model host). */
export type ModelServiceFactory = (opts: { mirror?: string }) => ModelService;

/**
 * `sotto models …`: the definitions only; models.ts (downloads, the configuration) is loaded when
 * a subcommand runs. Without `models`, the configured models directory (defaultModelService).
 */
export function registerModelCommands(program: Command, models?: ModelServiceFactory): void {
  const group = program.command('models').description('speech-recognition models (whisper)');
  group
    .command('pull')
    .description('download a whisper model, resuming a partial download, and verify its SHA-256')
    .argument('<name>', 'tiny.en | base.en | small.en | medium.en | large-v3-turbo')
    .option('--force', 'download again even when a verified copy is installed')
    .option(
      '--mirror <url>',
      'download from a mirror holding the same ggml-*.bin files (the digest is still checked)',
    )
    .action(async (name: string, opts: { force?: boolean; mirror?: string }) => {
      const { runModelPull } = await import('./models.js');
      await runModelPull(name, opts, models);
    });
  group
    .command('list')
    .description('show the known models, which are installed and verified, and which one is configured')
    .action(async () => {
      const { runModelList } = await import('./models.js');
      await runModelList(models);
    });
}
