/**
 * A failure the CLI reports as one line on stderr with exit status 1 (no stack): bad input, a
 * refused operation. Its own module so that commands can throw it without loading the runtime.
 */
export class CliError extends Error {
  override name = 'CliError';
}
