import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './prng.js';

/**
 * Writes a tiny whisper.cpp model (legacy ggml .bin, the format of models/convert-pt-to-ggml.py
 * and whisper_model_load) with seeded pseudo-random weights, so the whisper engine can be run end
 * to end on machines that cannot download real weights. It recognises nothing.
 *
 * What is fixed by whisper.cpp or by our own header check (src/adapters/asr/ggml-header.ts):
 * - n_vocab 51864 (English-only layout): whisper.cpp places its special tokens (end of text
 *   50256, start 50257, timestamps from 50363) at fixed ids, so a smaller vocabulary cannot work;
 * - n_audio_ctx 1500, n_text_ctx 448, 80 mels, and a state width the header check accepts (384,
 *   the smallest real one). The token embedding (384 × 51864) is then most of the file, which is
 *   why the default weight type is q4_0 (about 15 MB) rather than f16 (about 45 MB).
 * What is chosen to keep it small and fast: one encoder and one decoder layer.
 *
 * A decoder with purely random weights babbles up to whisper's 220-token limit, fails its
 * repetition check and retries at five temperatures with five decoders each: tens of seconds per
 * call and an unpredictable, often empty, result. So the decoder's MLP is also given a small
 * lookup table (a "bigram" steer): after <|startoftranscript|> it emits
 *   <|0.00|> wordA wordB -suffix <|1.98|><|2.00|> <|endoftext|>
 * with overwhelming probability, whatever the audio. Every other weight stays random, the encoder
 * and cross-attention still run at full cost over the audio, and whisper.cpp's own machinery
 * (mel filters, timestamp rules, seeking 2 s per window, token timestamps, segment wrapping)
 * does the rest. Each 30-second window thus ends after 2 s of audio, so a clip of a few seconds
 * runs several windows, which is what makes progress reports observable.
 */

export type TinyWhisperFtype = 'f32' | 'f16' | 'q4_0';

export interface TinyWhisperOptions {
  /** PRNG seed: the same seed gives a byte-identical file. */
  seed?: number;
  /** Storage of the big matrices (default q4_0, the smallest that keeps 384-wide rows exact in blocks). */
  ftype?: TinyWhisperFtype;
}

export interface TinyWhisperModel {
  bytes: number;
  /** The words the steered decoder produces, in order, as wordsFromTokens joins them. */
  words: string[];
  /** Seconds of audio one decoding window consumes (the closing timestamp of the steer). */
  windowSeconds: number;
}

// Shapes whisper.cpp and the header check require (see above).
const N_VOCAB = 51864;
const N_AUDIO_CTX = 1500;
const N_TEXT_CTX = 448;
const N_STATE = 384;
const N_HEAD = 6;
const N_LAYER = 1;
const N_MELS = 80;
const N_FFT_BINS = 201; // WHISPER_N_FFT 400 / 2 + 1

// whisper.cpp's English-only token layout (whisper_vocab in src/whisper.cpp).
const TOKEN_EOT = 50256;
const TOKEN_SOT = 50257;
const TOKEN_BEG = 50363; // <|0.00|>; each further id is 20 ms
/** Tokens stored in the file: the GPT-2 byte-pair vocabulary; whisper.cpp adds the specials. */
const N_TEXT_TOKENS = 50256;
const WINDOW_TS = 100; // <|2.00|>

const GGML_MAGIC = 0x67676d6c;
const GGML_QNT_VERSION_FACTOR = 1000;
const GGML_QNT_VERSION = 2;
// ggml_type ids as stored per tensor, and the file-level ftype (ggml_ftype) for each choice.
const TYPE_ID = { f32: 0, f16: 1, q4_0: 2 } as const;
const FTYPE_ID = { f32: 0, f16: 1, q4_0: 2 + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR } as const;
const QK4_0 = 32;

/** Uniform values with the given standard deviation (a normal is not needed for noise). */
function randomArray(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  const half = std * Math.sqrt(3);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * half;
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half from a float, rounded to nearest even (ggml's GGML_FP32_TO_FP16). */
function toHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encodes values as ggml stores them; q4_0 follows quantize_row_q4_0_ref exactly. */
function encode(values: Float32Array, type: TinyWhisperFtype): Buffer {
  if (type === 'f32') return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  if (type === 'f16') {
    const out = Buffer.alloc(values.length * 2);
    for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalf(values[i]!), i * 2);
    return out;
  }
  const blocks = values.length / QK4_0;
  const out = Buffer.alloc(blocks * 18);
  for (let b = 0; b < blocks; b++) {
    const base = b * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = values[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(toHalf(d), b * 18);
    for (let j = 0; j < QK4_0 / 2; j++) {
      // Math.trunc = the C cast to int8_t; values are in [0.5, 16.5) by construction.
      const x0 = Math.min(15, Math.trunc(values[base + j]! * id + 8.5));
      const x1 = Math.min(15, Math.trunc(values[base + QK4_0 / 2 + j]! * id + 8.5));
      out[b * 18 + 2 + j] = x0 | (x1 << 4);
    }
  }
  return out;
}

/** What whisper.cpp will compute with after loading `encode(values)`. */
function decode(bytes: Buffer, type: TinyWhisperFtype, n: number): Float32Array {
  const out = new Float32Array(n);
  if (type === 'f32') {
    for (let i = 0; i < n; i++) out[i] = bytes.readFloatLE(i * 4);
  } else if (type === 'f16') {
    for (let i = 0; i < n; i++) out[i] = fromHalf(bytes.readUInt16LE(i * 2));
  } else {
    for (let b = 0; b < n / QK4_0; b++) {
      const d = fromHalf(bytes.readUInt16LE(b * 18));
      for (let j = 0; j < QK4_0 / 2; j++) {
        const q = bytes[b * 18 + 2 + j]!;
        out[b * QK4_0 + j] = ((q & 0x0f) - 8) * d;
        out[b * QK4_0 + QK4_0 / 2 + j] = ((q >>> 4) - 8) * d;
      }
    }
  }
  return out;
}

/**
 * The 80-band mel filter bank whisper ships (mel_filters.npz = librosa.filters.mel(sr=16000,
 * n_fft=400, n_mels=80): Slaney mel scale, Slaney area normalisation). whisper.cpp computes its
 * spectrogram with the filters from the model file, so these decide what the encoder sees.
 */
export function melFilters(nMels = N_MELS, nBins = N_FFT_BINS, sampleRate = 16_000): Float32Array {
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  const hzToMel = (f: number) => (f < minLogHz ? f / fSp : minLogMel + Math.log(f / minLogHz) / logStep);
  const melToHz = (m: number) => (m < minLogMel ? m * fSp : minLogHz * Math.exp(logStep * (m - minLogMel)));
  const maxMel = hzToMel(sampleRate / 2);
  const melF = Array.from({ length: nMels + 2 }, (_, i) => melToHz((maxMel * i) / (nMels + 1)));
  const fftFreqs = Array.from({ length: nBins }, (_, k) => (k * sampleRate) / 2 / (nBins - 1));
  const out = new Float32Array(nMels * nBins);
  for (let m = 0; m < nMels; m++) {
    const enorm = 2 / (melF[m + 2]! - melF[m]!);
    for (let k = 0; k < nBins; k++) {
      const lower = (fftFreqs[k]! - melF[m]!) / (melF[m + 1]! - melF[m]!);
      const upper = (melF[m + 2]! - fftFreqs[k]!) / (melF[m + 2]! - melF[m + 1]!);
      out[m * nBins + k] = Math.max(0, Math.min(lower, upper)) * enorm;
    }
  }
  return out;
}

/**
 * Nonsense pieces for the vocabulary. Whisper.cpp looks one entry up by its text (" ", GPT-2's
 * id 220, suppressed at the start of every window: without it decoding throws), so that entry is
 * real; the others are pronounceable junk, most with the leading space that starts a word.
 */
function vocabulary(): string[] {
  const consonants = 'bdfgklmnprstvz';
  const vowels = 'aeiou';
  const tokens: string[] = [];
  for (let i = 0; i < N_TEXT_TOKENS; i++) {
    if (i === 220) {
      tokens.push(' ');
    } else if (i < 256) {
      tokens.push(String.fromCharCode(33 + (i % 94))); // printable ASCII, like GPT-2's byte tokens
    } else {
      let word = '';
      for (let n = i; word.length < 2 || n > 0; n = Math.floor(n / 70)) {
        word += consonants[n % 14]! + vowels[Math.floor(n / 14) % 5]!;
      }
      tokens.push(i % 4 === 3 ? word : ` ${word}`);
    }
  }
  return tokens;
}

function i32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

/** One tensor record: n_dims, name length, type, dims (ggml order, fastest first), name, data. */
function tensorRecord(name: string, shape: number[], type: TinyWhisperFtype, data: Buffer): Buffer[] {
  const n = Buffer.from(name, 'utf8');
  return [i32(shape.length, n.length, TYPE_ID[type], ...shape), n, data];
}

/** Layer norm without gain or bias, as whisper's ln layers compute it (eps 1e-5). */
function layerNorm(x: Float32Array): Float32Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  variance /= x.length;
  const scale = 1 / Math.sqrt(variance + 1e-5);
  return x.map((v) => (v - mean) * scale);
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Builds the model file in memory. */
export function buildTinyWhisperModel(opts: TinyWhisperOptions = {}): {
  file: Buffer;
  model: TinyWhisperModel;
} {
  // Seeded, so the same options write the same bytes.
  const rand = mulberry32(opts.seed ?? 1);
  const wtype: TinyWhisperFtype = opts.ftype ?? 'q4_0';
  // Conv kernels are f16 in every model that is not all-f32 (whisper_model_load's vtype).
  const vtype: TinyWhisperFtype = wtype === 'f32' ? 'f32' : 'f16';
  const S = N_STATE;
  const parts: Buffer[] = [];

  parts.push(
    i32(GGML_MAGIC, N_VOCAB, N_AUDIO_CTX, S, N_HEAD, N_LAYER, N_TEXT_CTX, S, N_HEAD, N_LAYER, N_MELS),
    i32(FTYPE_ID[wtype]),
  );
  parts.push(i32(N_MELS, N_FFT_BINS), encode(melFilters(), 'f32'));

  const tokens = vocabulary();
  parts.push(i32(tokens.length));
  for (const t of tokens) {
    const b = Buffer.from(t, 'utf8');
    parts.push(i32(b.length), b);
  }

  const f32 = (name: string, shape: number[], values: Float32Array) =>
    parts.push(...tensorRecord(name, shape, 'f32', encode(values, 'f32')));
  const ones = (n: number) => new Float32Array(n).fill(1);
  const noise = (n: number, std: number) => randomArray(rand, n, std);
  /** A [nIn → nOut] matrix (ggml shape [nIn, nOut]) in the model's weight type. */
  const matrix = (name: string, nIn: number, nOut: number, values: Float32Array) =>
    parts.push(...tensorRecord(name, [nIn, nOut], wtype, encode(values, wtype)));

  // Random layers scaled so activations stay around unit size (no inf/NaN anywhere).
  const attention = (prefix: string) => {
    f32(`${prefix}_ln.weight`, [S], ones(S));
    f32(`${prefix}_ln.bias`, [S], noise(S, 0.02));
    matrix(`${prefix}.query.weight`, S, S, noise(S * S, 1 / Math.sqrt(S)));
    f32(`${prefix}.query.bias`, [S], noise(S, 0.02));
    matrix(`${prefix}.key.weight`, S, S, noise(S * S, 1 / Math.sqrt(S)));
    matrix(`${prefix}.value.weight`, S, S, noise(S * S, 1 / Math.sqrt(S)));
    f32(`${prefix}.value.bias`, [S], noise(S, 0.02));
    // Small output so attention perturbs the decoder's residual stream without overriding the steer.
    matrix(`${prefix}.out.weight`, S, S, noise(S * S, 0.05 / Math.sqrt(S)));
    f32(`${prefix}.out.bias`, [S], noise(S, 0.01));
  };
  const mlp = (prefix: string, w0: Float32Array, b0: Float32Array, w2: Float32Array) => {
    f32(`${prefix}mlp_ln.weight`, [S], ones(S));
    f32(`${prefix}mlp_ln.bias`, [S], new Float32Array(S));
    matrix(`${prefix}mlp.0.weight`, S, 4 * S, w0);
    f32(`${prefix}mlp.0.bias`, [4 * S], b0);
    matrix(`${prefix}mlp.2.weight`, 4 * S, S, w2);
    f32(`${prefix}mlp.2.bias`, [S], new Float32Array(S));
  };

  // Encoder: conv1 sees log-mels of about unit size, fan-in 3 × 80; conv2 fan-in 3 × S.
  f32('encoder.positional_embedding', [S, N_AUDIO_CTX], noise(S * N_AUDIO_CTX, 0.1));
  parts.push(
    ...tensorRecord(
      'encoder.conv1.weight',
      [3, N_MELS, S],
      vtype,
      encode(noise(3 * N_MELS * S, 1 / Math.sqrt(3 * N_MELS)), vtype),
    ),
  );
  f32('encoder.conv1.bias', [1, S], noise(S, 0.02));
  parts.push(
    ...tensorRecord(
      'encoder.conv2.weight',
      [3, S, S],
      vtype,
      encode(noise(3 * S * S, 1 / Math.sqrt(3 * S)), vtype),
    ),
  );
  f32('encoder.conv2.bias', [1, S], noise(S, 0.02));
  f32('encoder.ln_post.weight', [S], ones(S));
  f32('encoder.ln_post.bias', [S], new Float32Array(S));
  for (let l = 0; l < N_LAYER; l++) {
    attention(`encoder.blocks.${l}.attn`);
    mlp(
      `encoder.blocks.${l}.`,
      noise(S * 4 * S, 1 / Math.sqrt(S)),
      noise(4 * S, 0.02),
      noise(4 * S * S, 0.5 / Math.sqrt(4 * S)),
    );
  }

  // Decoder. The token embedding is also the output projection (whisper ties them).
  const embedding = noise(S * N_VOCAB, 1);
  const embeddingBytes = encode(embedding, wtype);
  const effective = decode(embeddingBytes, wtype, S * N_VOCAB);
  const row = (token: number) => effective.subarray(token * S, (token + 1) * S);

  // The steer: a chain of (input token → next token), written into otherwise random MLP units.
  const pieces = [...tokens.entries()].filter(([id]) => id >= 256);
  const pick = (leadingSpace: boolean, taken: number[]): number => {
    for (;;) {
      const [id, text] = pieces[Math.floor(rand() * pieces.length)]!;
      if (text.startsWith(' ') === leadingSpace && !taken.includes(id)) return id;
    }
  };
  const wordA = pick(true, []);
  const wordB = pick(true, [wordA]);
  const suffix = pick(false, [wordA, wordB]);
  // Closing on two timestamps (not one) makes whisper.cpp seek to the last of them rather than
  // skip the rest of the 30-second window.
  const chain = [
    TOKEN_SOT,
    TOKEN_BEG,
    wordA,
    wordB,
    suffix,
    TOKEN_BEG + WINDOW_TS - 1,
    TOKEN_BEG + WINDOW_TS,
    TOKEN_EOT,
  ];

  const H = 4 * S;
  const gain = 16; // a matching unit's pre-activation is gain/2, any other unit's about -gain/2
  const w0 = noise(S * H, 1 / Math.sqrt(S));
  const b0 = new Float32Array(H);
  const w2 = noise(H * S, 0.002);
  for (let k = 0; k + 1 < chain.length; k++) {
    const from = layerNorm(row(chain[k]!));
    const to = row(chain[k + 1]!);
    const input = row(chain[k]!);
    for (let i = 0; i < S; i++) w0[k * S + i] = (gain * from[i]!) / S;
    b0[k] = -gain / 2;
    // mlp.2 is [H → S]: output i reads hidden unit k at i * H + k. The unit replaces the input
    // token's embedding in the residual stream with twice the next token's.
    const act = gelu(gain / 2);
    for (let i = 0; i < S; i++) w2[i * H + k] = (2 * to[i]! - input[i]!) / act;
  }

  f32('decoder.positional_embedding', [S, N_TEXT_CTX], noise(S * N_TEXT_CTX, 0.05));
  parts.push(...tensorRecord('decoder.token_embedding.weight', [S, N_VOCAB], wtype, embeddingBytes));
  f32('decoder.ln.weight', [S], ones(S));
  f32('decoder.ln.bias', [S], new Float32Array(S));
  for (let l = 0; l < N_LAYER; l++) {
    attention(`decoder.blocks.${l}.attn`);
    attention(`decoder.blocks.${l}.cross_attn`);
    // With several layers only the last would carry the steer; one layer is all this needs.
    mlp(`decoder.blocks.${l}.`, w0, b0, w2);
  }

  const file = Buffer.concat(parts);
  return {
    file,
    model: {
      bytes: file.length,
      words: [tokens[wordA]!.trim(), (tokens[wordB]! + tokens[suffix]!).trim()],
      windowSeconds: WINDOW_TS * 0.02,
    },
  };
}

/** Writes the model to `file` (for tests: a temporary directory). */
export async function writeTinyWhisperModel(
  file: string,
  opts: TinyWhisperOptions = {},
): Promise<TinyWhisperModel> {
  const { file: bytes, model } = buildTinyWhisperModel(opts);
  await writeFile(file, bytes);
  return model;
}

async function main(argv: string[]): Promise<void> {
  const usage = 'usage: tsx scripts/make-tiny-whisper-model.ts OUT.bin [--seed N] [--ftype q4_0|f16|f32]';
  let out: string | undefined;
  const opts: TinyWhisperOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--seed') opts.seed = Number(argv[++i]);
    else if (arg === '--ftype') opts.ftype = argv[++i] as TinyWhisperFtype;
    else if (!arg.startsWith('-') && out === undefined) out = arg;
    else throw new Error(usage);
  }
  if (!out || (opts.seed !== undefined && !Number.isInteger(opts.seed))) throw new Error(usage);
  if (opts.ftype && !Object.hasOwn(TYPE_ID, opts.ftype)) throw new Error(usage);
  const model = await writeTinyWhisperModel(out, opts);
  console.log(`${out}: ${model.bytes} bytes; it transcribes any audio as "${model.words.join(' ')}"`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
