import { open } from 'node:fs/promises';

/**
 * A cheap structural check of a whisper.cpp ggml model file, done before native code is let near
 * it: whisper.cpp trusts the file and aborts the whole process on some malformed headers.
 */
export interface GgmlWhisperHeader {
  nVocab: number;
  nAudioState: number;
  nAudioLayer: number;
  nTextLayer: number;
  nMels: number;
  ftype: number;
  multilingual: boolean;
}

const GGML_MAGIC = 0x67676d6c; // "ggml", little-endian
// Weight types whisper.cpp maps to a ggml type; any other value trips a GGML_ASSERT that aborts
// the whole process, which is why this is checked before native code sees the file.
const GGML_FTYPES = new Set([0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14]);
const MIN_MODEL_BYTES = 1024 * 1024;

/**
 * Reads and sanity-checks the header of a whisper.cpp ggml model. Returns the problem in words
 * (for the operator) instead of throwing, so callers choose their error type.
 */
export async function inspectGgmlModel(
  file: string,
): Promise<{ ok: true; header: GgmlWhisperHeader } | { ok: false; problem: string }> {
  let size: number;
  let head: Buffer;
  try {
    const fd = await open(file, 'r');
    try {
      size = (await fd.stat()).size;
      head = Buffer.alloc(48);
      await fd.read(head, 0, 48, 0);
    } finally {
      await fd.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      problem: code === 'ENOENT' ? 'the file does not exist' : `cannot read it (${code ?? 'error'})`,
    };
  }
  if (size < MIN_MODEL_BYTES) return { ok: false, problem: `it is too small to be a model (${size} bytes)` };
  const magic = head.readUInt32LE(0);
  if (head.toString('ascii', 0, 4) === 'GGUF') {
    return { ok: false, problem: 'it is a GGUF file; whisper needs a ggml .bin model' };
  }
  if (magic !== GGML_MAGIC) return { ok: false, problem: 'it is not a ggml model (wrong magic number)' };
  const v = Array.from({ length: 11 }, (_, i) => head.readInt32LE(4 + i * 4));
  const [
    nVocab,
    nAudioCtx,
    nAudioState,
    nAudioHead,
    nAudioLayer,
    nTextCtx,
    nTextState,
    nTextHead,
    nTextLayer,
    nMels,
    ftype,
  ] = v as [number, number, number, number, number, number, number, number, number, number, number];
  const sane =
    nVocab >= 51864 &&
    nVocab <= 51866 &&
    nAudioCtx === 1500 &&
    [384, 512, 768, 1024, 1280].includes(nAudioState) &&
    nTextState === nAudioState &&
    nTextCtx === 448 &&
    [nAudioHead, nTextHead, nAudioLayer, nTextLayer].every((n) => n >= 1 && n <= 64) &&
    (nMels === 80 || nMels === 128) &&
    ftype >= 0 &&
    GGML_FTYPES.has(ftype % 1000);
  if (!sane)
    return { ok: false, problem: 'its header does not describe a whisper model (corrupt or not whisper)' };
  return {
    ok: true,
    header: { nVocab, nAudioState, nAudioLayer, nTextLayer, nMels, ftype, multilingual: nVocab >= 51865 },
  };
}
