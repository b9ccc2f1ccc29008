/**
 * WAV (RIFF/RF64/BW64 WAVE) header parsing, PCM reading and writing. The parser works on the first
 * bytes of a file so uploads can be checked while they stream, and it never trusts a size field:
 * the data length is clamped to what the file really holds, so a header claiming ten hours in a
 * 1 KB file costs nothing.
 */
export type PcmEncoding = 'u8' | 's16' | 's24' | 's32' | 'f32' | 'f64';

export interface WavFormat {
  /** The effective format tag (the SubFormat's for WAVE_FORMAT_EXTENSIBLE): 1 PCM, 3 float… */
  formatTag: number;
  extensible: boolean;
  channels: number;
  sampleRate: number;
  /** Bits per sample as stored (the container size). */
  bitsPerSample: number;
  blockAlign: number;
  channelMask: number | undefined;
  /** How to read the samples natively; undefined for codecs inside WAV (µ-law, ADPCM, MP3…). */
  encoding: PcmEncoding | undefined;
}

export interface WavHeader {
  container: 'RIFF' | 'RF64' | 'BW64';
  format: WavFormat;
  dataOffset: number;
  /** What the header says; undefined when it marks the length unknown (streamed writers). */
  declaredDataBytes: number | undefined;
  /**
   * Whole frames to read: the declared length clamped to the file when its size is known, and
   * undefined when neither the header nor the file size tell (read to the end).
   */
  dataBytes: number | undefined;
  frames: number | undefined;
  /** Seconds of audio actually present (or declared, when the file size is unknown). */
  duration: number | undefined;
  /** The header claims more data than the file holds. */
  truncated: boolean;
}

export type WavParse =
  | { kind: 'header'; header: WavHeader }
  /** The head ends before the data chunk: read at least this many bytes and parse again. */
  | { kind: 'need_more'; bytes: number }
  /** Not a sane WAV header; the message is safe to show a user. */
  | { kind: 'invalid'; message: string };

export const MAX_WAV_CHANNELS = 64;
const MIN_RATE = 1000;
const MAX_RATE = 1_000_000;
/** Chunks before `data` (bext, LIST, iXML, JUNK…) are small; beyond this the header is refused. */
export const MAX_WAV_HEADER_BYTES = 1 << 20;

const EXTENSIBLE = 0xfffe;
// KSDATAFORMAT_SUBTYPE_* GUIDs share these 14 bytes after the 2-byte format code.
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
/** 0xFFFFFFFF (and 0 from some streaming writers) in a 32-bit size field mean "unknown". */
const UNKNOWN_32 = 0xffffffff;

function ascii(b: Uint8Array, at: number, len: number): string {
  let s = '';
  for (let i = at; i < at + len && i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function encodingOf(tag: number, bits: number): PcmEncoding | undefined {
  if (tag === 1)
    return bits === 8 ? 'u8' : bits === 16 ? 's16' : bits === 24 ? 's24' : bits === 32 ? 's32' : undefined;
  if (tag === 3) return bits === 32 ? 'f32' : bits === 64 ? 'f64' : undefined;
  return undefined;
}

function parseFmt(b: Uint8Array, view: DataView, at: number, size: number): WavFormat | string {
  if (size < 16) return 'WAV fmt chunk is too short';
  let formatTag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bitsPerSample = view.getUint16(at + 14, true);
  let channelMask: number | undefined;
  let extensible = false;
  let knownSubFormat = true;
  if (formatTag === EXTENSIBLE) {
    if (size < 40 || view.getUint16(at + 16, true) < 22) return 'WAV extensible format chunk is too short';
    extensible = true;
    channelMask = view.getUint32(at + 20, true);
    formatTag = view.getUint16(at + 24, true);
    knownSubFormat = GUID_TAIL.every((byte, i) => b[at + 26 + i] === byte);
  }
  if (channels === 0 || channels > MAX_WAV_CHANNELS)
    return `WAV header declares ${channels} channels (1–${MAX_WAV_CHANNELS} supported)`;
  if (sampleRate < MIN_RATE || sampleRate > MAX_RATE)
    return `WAV header declares an implausible sample rate (${sampleRate} Hz)`;
  if (blockAlign === 0) return 'WAV header declares a zero block size';
  const encoding = knownSubFormat ? encodingOf(formatTag, bitsPerSample) : undefined;
  if (encoding && blockAlign !== channels * (bitsPerSample / 8))
    return 'WAV header block size does not match its channels and sample size';
  return { formatTag, extensible, channels, sampleRate, bitsPerSample, blockAlign, channelMask, encoding };
}

/**
 * Parses a WAV header from the first bytes of a file. `fileSize`, when known, clamps the data to
 * what is really there (and marks `truncated`).
 */
export function parseWavHeader(head: Uint8Array, options: { fileSize?: number } = {}): WavParse {
  const { fileSize } = options;
  if (head.length < 12) {
    return fileSize !== undefined && fileSize < 12
      ? { kind: 'invalid', message: 'File is too short to be a WAV file' }
      : { kind: 'need_more', bytes: 12 };
  }
  const container = ascii(head, 0, 4);
  if ((container !== 'RIFF' && container !== 'RF64' && container !== 'BW64') || ascii(head, 8, 4) !== 'WAVE')
    return { kind: 'invalid', message: 'Not a WAV file' };
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const limit = fileSize ?? Number.MAX_SAFE_INTEGER;
  let format: WavFormat | undefined;
  let ds64DataBytes: number | undefined;
  let at = 12;
  for (;;) {
    if (at + 8 > head.length) {
      if (at + 8 > limit) return { kind: 'invalid', message: 'WAV file has no data chunk' };
      if (at + 8 > MAX_WAV_HEADER_BYTES) return { kind: 'invalid', message: 'WAV header is too large' };
      return { kind: 'need_more', bytes: at + 8 };
    }
    const id = ascii(head, at, 4);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'data') {
      if (!format) return { kind: 'invalid', message: 'WAV data chunk comes before its format chunk' };
      return { kind: 'header', header: dataHeader(container, format, body, size, ds64DataBytes, fileSize) };
    }
    // Every other chunk must lie within the file and before the size cap.
    const end = body + size + (size & 1);
    if (end > limit)
      return { kind: 'invalid', message: `WAV '${printable(id)}' chunk extends beyond the file` };
    if (end + 8 > MAX_WAV_HEADER_BYTES) return { kind: 'invalid', message: 'WAV header is too large' };
    if (id === 'fmt ' || id === 'ds64') {
      if (end > head.length) return { kind: 'need_more', bytes: end + 8 };
      if (id === 'fmt ') {
        const parsed = parseFmt(head, view, body, size);
        if (typeof parsed === 'string') return { kind: 'invalid', message: parsed };
        format = parsed;
      } else {
        if (size < 28) return { kind: 'invalid', message: 'WAV ds64 chunk is too short' };
        const bytes = view.getBigUint64(body + 8, true);
        ds64DataBytes = bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes);
      }
    }
    at = end;
  }
}

function printable(id: string): string {
  return /^[\x20-\x7e]{4}$/.test(id) ? id.trim() : '?';
}

function dataHeader(
  container: WavHeader['container'],
  format: WavFormat,
  dataOffset: number,
  size32: number,
  ds64DataBytes: number | undefined,
  fileSize: number | undefined,
): WavHeader {
  let declared: number | undefined = size32;
  if (container !== 'RIFF' && size32 === UNKNOWN_32) declared = ds64DataBytes;
  else if (size32 === UNKNOWN_32 || size32 === 0) declared = undefined;
  const available = fileSize === undefined ? undefined : Math.max(0, fileSize - dataOffset);
  let bytes: number | undefined;
  let truncated = false;
  if (available === undefined) bytes = declared;
  else if (declared === undefined) bytes = available;
  else {
    truncated = declared > available;
    bytes = Math.min(declared, available);
  }
  const whole = bytes === undefined ? undefined : bytes - (bytes % format.blockAlign);
  const frames = whole === undefined ? undefined : whole / format.blockAlign;
  return {
    container,
    format,
    dataOffset,
    declaredDataBytes: declared,
    dataBytes: whole,
    frames,
    duration: frames === undefined ? undefined : frames / format.sampleRate,
    truncated,
  };
}

/**
 * Converts interleaved sample bytes (whole frames; a trailing partial frame is ignored) to one
 * Float32Array per channel in [-1, 1).
 */
export function readFloatChannels(bytes: Uint8Array, format: WavFormat): Float32Array[] {
  const { channels, blockAlign, encoding } = format;
  if (!encoding) throw new Error('readFloatChannels: not a PCM encoding');
  const frames = Math.floor(bytes.length / blockAlign);
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const step = blockAlign / channels;
  for (let c = 0; c < channels; c++) {
    const dst = out[c]!;
    let at = c * step;
    switch (encoding) {
      case 'u8':
        for (let i = 0; i < frames; i++, at += blockAlign) dst[i] = (bytes[at]! - 128) / 128;
        break;
      case 's16':
        for (let i = 0; i < frames; i++, at += blockAlign) dst[i] = view.getInt16(at, true) / 32768;
        break;
      case 's24':
        for (let i = 0; i < frames; i++, at += blockAlign)
          dst[i] = ((bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) << 8) / 2147483648;
        break;
      case 's32':
        for (let i = 0; i < frames; i++, at += blockAlign) dst[i] = view.getInt32(at, true) / 2147483648;
        break;
      case 'f32':
        for (let i = 0; i < frames; i++, at += blockAlign) dst[i] = view.getFloat32(at, true);
        break;
      case 'f64':
        for (let i = 0; i < frames; i++, at += blockAlign) dst[i] = view.getFloat64(at, true);
        break;
    }
  }
  return out;
}

/** Float samples to PCM16 with rounding and clipping (NaN becomes silence). */
export function floatToPcm16(input: Float32Array): Int16Array {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const v = Math.round(input[i]! * 32768);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v || 0;
  }
  return out;
}

export function pcm16ToFloat(input: Int16Array): Float32Array {
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i]! / 32768;
  return out;
}

/** Interleaved sample bytes to PCM16 per channel (exact for 16-bit input). */
export function readPcm16Channels(bytes: Uint8Array, format: WavFormat): Int16Array[] {
  if (format.encoding === 's16') {
    const frames = Math.floor(bytes.length / format.blockAlign);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: format.channels }, (_, c) => {
      const dst = new Int16Array(frames);
      for (let i = 0, at = c * 2; i < frames; i++, at += format.blockAlign) dst[i] = view.getInt16(at, true);
      return dst;
    });
  }
  return readFloatChannels(bytes, format).map(floatToPcm16);
}

export interface WavPcm16 {
  sampleRate: number;
  channels: Int16Array[];
  header: WavHeader;
}

/** Reads a whole in-memory WAV file as PCM16 per channel (tests, small files). */
export function readWav(file: Uint8Array): WavPcm16 {
  const parsed = parseWavHeader(file, { fileSize: file.length });
  if (parsed.kind === 'need_more') throw new Error('WAV file is incomplete');
  if (parsed.kind === 'invalid') throw new Error(parsed.message);
  const { header } = parsed;
  if (!header.format.encoding) throw new Error(`WAV format tag ${header.format.formatTag} is not PCM`);
  const data = file.subarray(header.dataOffset, header.dataOffset + (header.dataBytes ?? 0));
  return { sampleRate: header.format.sampleRate, channels: readPcm16Channels(data, header.format), header };
}

/** A canonical 44-byte PCM16 WAV header for `frames` frames (for streaming writers). */
export function wavHeader(sampleRate: number, channels: number, frames: number): Buffer {
  const dataBytes = frames * channels * 2;
  if (dataBytes + 36 > 0xffffffff) throw new RangeError('PCM too long for a RIFF WAV file');
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** A complete PCM16 WAV file from one array (mono) or one array per channel (interleaved). */
export function encodeWav(pcm: Int16Array | Int16Array[], sampleRate: number): Buffer {
  const channels = Array.isArray(pcm) ? pcm : [pcm];
  const frames = channels[0]?.length ?? 0;
  if (channels.some((c) => c.length !== frames)) throw new RangeError('channels differ in length');
  const out = Buffer.alloc(44 + frames * channels.length * 2);
  wavHeader(sampleRate, channels.length, frames).copy(out, 0);
  let at = 44;
  for (let i = 0; i < frames; i++) {
    for (const channel of channels) {
      out.writeInt16LE(channel[i]!, at);
      at += 2;
    }
  }
  return out;
}
