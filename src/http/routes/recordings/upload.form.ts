import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../../domain/errors.js';
import { bodyDeadlineError } from '../../plugins/request-deadline.js';

/**
 * Reading the upload form (multipart/form-data: one `audio` file, a few text fields) so that
 * whatever the client does — stall, vanish, cut the body short, send a malformed form — the
 * request ends with a 4xx, never a 500 or a hang, and no staged file is left behind.
 */
export interface UploadForm {
  /** The staged audio file; the caller owns it (and removes it if it refuses the request). */
  staged: string;
  fields: Record<string, string>;
}

/** RFC 2046 §5.1.1: 1 to 70 characters from this set, the last one not a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]$/;

function boundaryOf(contentType: string | undefined): string | undefined {
  const m = /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * What a failure while reading the body means for the client. The body's own faults become
 * AppErrors; anything else (a full disk, a bug) is passed on as it is.
 */
function bodyFailure(req: FastifyRequest, err: unknown): unknown {
  const deadline = bodyDeadlineError(req);
  if (deadline) return deadline;
  if (err instanceof AppError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  // @fastify/multipart's form limits: the error handler names them.
  if (typeof e?.code === 'string' && e.code.startsWith('FST_')) return err;
  // The request stream died under the parser (the client went away, or the form was cut short
  // and the parser dropped the file it was writing).
  if (req.raw.aborted || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || (e?.code === 'ECONNRESET' && !e.syscall))
    return new AppError('bad_request', 'The upload ended before it was complete');
  // busboy reports a malformed form with plain Errors and no code; file-system errors have one.
  if (err instanceof Error && err.constructor === Error && e?.code === undefined)
    return new AppError('bad_request', 'The multipart/form-data body is malformed or cut short');
  return err;
}

/**
 * Reads the form, staging the audio with `stage` as it arrives (never buffered in memory). Until
 * it returns, any staged file is removed with `discard` on every way out.
 */
export async function readUploadForm(
  req: FastifyRequest,
  stage: (file: Readable) => Promise<string>,
  discard: (file: string) => Promise<void>,
): Promise<UploadForm> {
  const boundary = boundaryOf(req.headers['content-type']);
  if (boundary === undefined || !BOUNDARY.test(boundary))
    throw new AppError(
      'bad_request',
      'The multipart/form-data Content-Type needs a boundary of 1 to 70 characters (RFC 2046)',
    );
  let staged: string | undefined;
  try {
    const fields: Record<string, string> = {};
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'audio' || staged) {
          part.file.resume();
          throw new AppError('bad_request', 'Send exactly one file, in the "audio" field');
        }
        staged = await stage(part.file);
      } else {
        fields[part.fieldname] = String(part.value);
      }
    }
    // The parts also stop when the client goes away mid-form: only a whole body is a form.
    if (req.raw.complete === false)
      throw new AppError('bad_request', 'The upload ended before it was complete');
    if (!staged) throw new AppError('bad_request', 'The "audio" file field is missing');
    const form = { staged, fields };
    staged = undefined;
    return form;
  } catch (err) {
    throw bodyFailure(req, err);
  } finally {
    if (staged) await discard(staged);
  }
}
