/**
 * Audio type detection from the first bytes of a file. File names and client-declared content
 * types are never trusted: an upload is accepted only when its own bytes say it is one of the
 * formats we decode. Anything unrecognised is `undefined` (the caller answers 415).
 */
export type AudioContainer = 'wav' | 'flac' | 'ogg' | 'mp3' | 'mp4' | 'aac' | 'webm' | 'matroska';

export type AudioCodec =
  'pcm' | 'pcm_float' | 'wav_other' | 'flac' | 'opus' | 'vorbis' | 'mp3' | 'mp2' | 'mp1' | 'aac' | undefined;

export interface SniffResult {
  container: AudioContainer;
  /** The codec when the header names it (Ogg, WAV, MPEG/ADTS frames); undefined for MP4/Matroska. */
  codec: AudioCodec;
  mime: string;
}

/** How many leading bytes `sniffAudio` wants; fewer work for most formats. */
export const SNIFF_BYTES = 4096;

const MIME: Record<AudioContainer, string> = {
  wav: 'audio/wav',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
  mp4: 'audio/mp4',
  aac: 'audio/aac',
  webm: 'audio/webm',
  matroska: 'audio/x-matroska',
};

const result = (container: AudioContainer, codec: AudioCodec): SniffResult => ({
  container,
  codec,
  mime: MIME[container],
});

function ascii(b: Uint8Array, at: number, len: number): string {
  if (at + len > b.length) return '';
  let s = '';
  for (let i = at; i < at + len; i++) s += String.fromCharCode(b[i]!);
  return s;
}

const u16le = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32le = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const u32be = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

export function sniffAudio(head: Uint8Array): SniffResult | undefined {
  if (head.length < 4) return undefined;
  const magic = ascii(head, 0, 4);
  if (magic === 'RIFF' || magic === 'RF64' || magic === 'BW64') return sniffWav(head);
  if (magic === 'fLaC') return result('flac', 'flac');
  if (magic === 'OggS') return sniffOgg(head);
  if (u32be(head, 0) === 0x1a45dfa3) return sniffEbml(head);
  if (ascii(head, 4, 4) === 'ftyp') return sniffMp4(head);
  if (ascii(head, 0, 3) === 'ID3') return sniffAfterId3(head);
  return sniffFrames(head, 0);
}

function sniffWav(b: Uint8Array): SniffResult | undefined {
  // RIFF/RF64/BW64 are generic containers (AVI, WebP are RIFF too): the form type must be WAVE.
  if (ascii(b, 8, 4) !== 'WAVE') return undefined;
  // Name the codec when the fmt chunk is within reach; the WAV parser validates it properly.
  let at = 12;
  while (at + 8 <= b.length) {
    const id = ascii(b, at, 4);
    const size = u32le(b, at + 4);
    if (id === 'fmt ' && at + 10 <= b.length) {
      let tag = u16le(b, at + 8);
      if (tag === 0xfffe && at + 8 + 26 <= b.length) tag = u16le(b, at + 8 + 24);
      return result('wav', tag === 1 ? 'pcm' : tag === 3 ? 'pcm_float' : 'wav_other');
    }
    if (id === 'data') break;
    at += 8 + size + (size & 1);
  }
  return result('wav', undefined);
}

/** Ogg: the first page carries the codec's identification header. */
function sniffOgg(b: Uint8Array): SniffResult | undefined {
  if (b.length < 28 || b[4] !== 0) return undefined; // stream structure version is 0
  const segments = b[26]!;
  const payload = 27 + segments;
  if (ascii(b, payload, 8) === 'OpusHead') return result('ogg', 'opus');
  if (b[payload] === 0x01 && ascii(b, payload + 1, 6) === 'vorbis') return result('ogg', 'vorbis');
  if (b[payload] === 0x7f && ascii(b, payload + 1, 4) === 'FLAC') return result('ogg', 'flac');
  // Theora video, Speex, Skeleton…: not an audio format we accept.
  return undefined;
}

/** Reads an EBML variable-length integer: [value, length], value -1 for "unknown size". */
function vint(b: Uint8Array, at: number, keepMarker: boolean): [number, number] | undefined {
  const first = b[at];
  if (first === undefined || first === 0) return undefined;
  let len = 1;
  while (!(first & (0x80 >> (len - 1)))) len++;
  if (len > 8 || at + len > b.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> len);
  let allOnes = value === 0xff >> len;
  for (let i = 1; i < len; i++) {
    value = value * 256 + b[at + i]!;
    if (b[at + i] !== 0xff) allOnes = false;
  }
  return [!keepMarker && allOnes ? -1 : value, len];
}

/** EBML header → DocType ("webm" or "matroska"). */
function sniffEbml(b: Uint8Array): SniffResult | undefined {
  const size = vint(b, 4, false);
  if (!size) return undefined;
  let at = 4 + size[1];
  const end = size[0] < 0 ? b.length : Math.min(b.length, at + size[0]);
  while (at < end) {
    const id = vint(b, at, true);
    if (!id) return undefined;
    const len = vint(b, at + id[1], false);
    if (!len || len[0] < 0) return undefined;
    const body = at + id[1] + len[1];
    if (id[0] === 0x4282) {
      const docType = ascii(b, body, Math.min(len[0], 16)).replace(/\0+$/, '');
      if (docType === 'webm') return result('webm', undefined);
      if (docType === 'matroska') return result('matroska', undefined);
      return undefined;
    }
    at = body + len[0];
  }
  return undefined;
}

/** ISO base media (MP4/M4A/3GP): an audio-capable brand must be listed in the ftyp box. */
const MP4_BRANDS = new Set([
  'M4A ',
  'M4B ',
  'mp41',
  'mp42',
  'isom',
  'iso2',
  'iso3',
  'iso4',
  'iso5',
  'iso6',
  'dash',
  'M4V ',
  '3gp4',
  '3gp5',
  '3gp6',
  '3g2a',
  'F4A ',
]);

function sniffMp4(b: Uint8Array): SniffResult | undefined {
  const size = u32be(b, 0);
  if (size < 16 || size > 4096 || b.length < 16) return undefined;
  const brands = [ascii(b, 8, 4)];
  for (let at = 16; at + 4 <= Math.min(size, b.length); at += 4) brands.push(ascii(b, at, 4));
  return brands.some((brand) => MP4_BRANDS.has(brand)) ? result('mp4', undefined) : undefined;
}

/**
 * Length of a leading ID3v2 tag (header and footer included), undefined when there is none. A
 * caller whose head ends inside the tag can sniff again from this offset.
 */
export function id3TagLength(b: Uint8Array): number | undefined {
  if (b.length < 10 || ascii(b, 0, 3) !== 'ID3') return undefined;
  const major = b[3]!;
  if (major < 2 || major > 4 || b[4] === 0xff) return undefined;
  for (let i = 6; i < 10; i++) if (b[i]! & 0x80) return undefined; // sizes are "syncsafe"
  return ((b[6]! << 21) | (b[7]! << 14) | (b[8]! << 7) | b[9]!) + (b[5]! & 0x10 ? 20 : 10);
}

/** ID3v2 tags precede MP3 (and sometimes ADTS or FLAC) data. */
function sniffAfterId3(b: Uint8Array): SniffResult | undefined {
  const size = id3TagLength(b);
  if (size === undefined) return undefined;
  // A tag (cover art) can be larger than the sniffed head; the tag itself marks an MPEG file.
  if (size + 4 > b.length) return result('mp3', 'mp3');
  return sniffAfterTag(b.subarray(size)) ?? result('mp3', 'mp3');
}

/** What follows an ID3 tag: FLAC, ADTS or MPEG frames, after any padding. */
export function sniffAfterTag(b: Uint8Array): SniffResult | undefined {
  let at = 0;
  while (at < b.length && b[at] === 0) at++; // tag padding written after the declared size
  if (ascii(b, at, 4) === 'fLaC') return result('flac', 'flac');
  return sniffFrames(b, at);
}

const MPEG1_BITRATES = [
  [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448], // layer I
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384], // layer II
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // layer III
];
const MPEG2_BITRATES = [
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256], // layer I
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // layers II & III
];
const SAMPLE_RATES = [44100, 48000, 32000];

interface Frame {
  length: number;
  codec: AudioCodec;
  container: AudioContainer;
}

/** Decodes an MPEG audio or ADTS frame header at `at`; undefined unless it is a valid one. */
function frameAt(b: Uint8Array, at: number): Frame | undefined {
  if (at + 7 > b.length || b[at] !== 0xff || (b[at + 1]! & 0xe0) !== 0xe0) return undefined;
  const version = (b[at + 1]! >> 3) & 3; // 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
  const layer = (b[at + 1]! >> 1) & 3; // 0: ADTS (AAC), 1: III, 2: II, 3: I
  if (layer === 0) {
    // ADTS: 12-bit sync, layer 00; sampling index 13-15 are reserved.
    if ((b[at + 1]! & 0xf0) !== 0xf0 || ((b[at + 2]! >> 2) & 0xf) > 12) return undefined;
    const length = ((b[at + 3]! & 3) << 11) | (b[at + 4]! << 3) | (b[at + 5]! >> 5);
    return length >= 7 ? { length, codec: 'aac', container: 'aac' } : undefined;
  }
  if (version === 1) return undefined;
  const bitrateIndex = b[at + 2]! >> 4;
  const rateIndex = (b[at + 2]! >> 2) & 3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return undefined;
  const padding = (b[at + 2]! >> 1) & 1;
  const sampleRate = SAMPLE_RATES[rateIndex]! / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const layerIndex = 3 - layer; // 0: I, 1: II, 2: III
  const kbps =
    version === 3
      ? MPEG1_BITRATES[layerIndex]![bitrateIndex]!
      : MPEG2_BITRATES[layerIndex === 0 ? 0 : 1]![bitrateIndex]!;
  const bps = kbps * 1000;
  let length: number;
  if (layerIndex === 0) length = (Math.floor((12 * bps) / sampleRate) + padding) * 4;
  else if (layerIndex === 2 && version !== 3) length = Math.floor((72 * bps) / sampleRate) + padding;
  else length = Math.floor((144 * bps) / sampleRate) + padding;
  const codec: AudioCodec = layerIndex === 2 ? 'mp3' : layerIndex === 1 ? 'mp2' : 'mp1';
  return { length, codec, container: 'mp3' };
}

/**
 * Raw MPEG audio / ADTS: a frame header is only two bytes of sync, which random data matches
 * often enough. When the next frame lies within the head, it must be a valid header of the same
 * kind too.
 */
function sniffFrames(b: Uint8Array, at: number): SniffResult | undefined {
  const first = frameAt(b, at);
  if (!first) return undefined;
  const next = at + first.length;
  if (next + 4 <= b.length) {
    const second = frameAt(b, next);
    if (!second || second.container !== first.container) return undefined;
  } else if (b.length - at < 64) {
    return undefined; // too little to tell a frame from noise
  }
  return result(first.container, first.codec);
}
