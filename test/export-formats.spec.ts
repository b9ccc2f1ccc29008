/**
 * Transcript exports parsed back by strict readers written here from each format's spec:
 * SubRip (sequential cue numbers from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between
 * cues), WebVTT (`WEBVTT` header, `HH:MM:SS.mmm` timings, `<v Name>` voice spans, escaped `&<>`),
 * JSON (round trip), DOCX (a valid zip whose word/document.xml holds the text; LibreOffice
 * converts it when installed).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Segment, Word } from '../src/domain/transcript.js';
import { EXPORT_FORMATS, exportTranscript } from '../src/services/recordings/export.service.js';

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'export-spec-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

function seg(id: number, speaker: string, start: number, text: string, step = 0.4): Segment {
  const words: Word[] = text
    .split(' ')
    .map((w, i) => ({ w, start: start + i * step, end: start + i * step + step * 0.8, conf: 0.9 }));
  return { id: `seg-${String(id).padStart(4, '0')}`, speaker, start, end: words.at(-1)!.end, text, words };
}

const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
const segments: Segment[] = [
  seg(1, 'S1', 0.5, 'hello thank you for calling'),
  seg(2, 'S2', 3.25, 'a --> b <i>not</i> & "quoted"'),
  seg(3, 'S1', 3661.5, long),
  // Edited text whose words no longer line up with the recognised ones, with a newline in it.
  { ...seg(4, 'S2', 3700, 'one two three'), text: 'One, two —\nthree four!' },
];
const input = { title: 'Intake: call #7 <draft>', speakers: { S1: 'Dr. Ada & co', S2: '' }, segments };
const names: Record<string, string> = { S1: 'Dr. Ada & co', S2: 'Speaker 2' };

interface Cue {
  start: number;
  end: number;
  text: string;
}

const toSeconds = (h: string, m: string, s: string, ms: string): number =>
  +h * 3600 + +m * 60 + +s + +ms / 1000;

/** SubRip, strictly: "n\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext…\n" blocks separated by one blank line. */
function parseSrt(text: string): Cue[] {
  expect(text.endsWith('\n')).toBe(true);
  expect(text).not.toMatch(/\r/);
  const blocks = text.slice(0, -1).split('\n\n');
  return blocks.map((block, i) => {
    const lines = block.split('\n');
    expect(lines[0], `cue number of block ${i + 1}`).toBe(String(i + 1));
    const m = /^(\d{2}):([0-5]\d):([0-5]\d),(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d),(\d{3})$/.exec(
      lines[1] ?? '',
    );
    expect(m, `timing line "${lines[1]}"`).not.toBeNull();
    const body = lines.slice(2);
    expect(body.length).toBeGreaterThan(0);
    for (const l of body) expect(l.trim()).not.toBe('');
    expect(body.join('\n')).not.toContain('-->');
    const start = toSeconds(m![1]!, m![2]!, m![3]!, m![4]!);
    const end = toSeconds(m![5]!, m![6]!, m![7]!, m![8]!);
    expect(end).toBeGreaterThan(start);
    return { start, end, text: body.join('\n') };
  });
}

/** WebVTT, strictly: header line, then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm\n<v Name>text". */
function parseVtt(text: string): (Cue & { voice: string })[] {
  expect(text.startsWith('WEBVTT\n\n')).toBe(true);
  expect(text.endsWith('\n')).toBe(true);
  const blocks = text.slice('WEBVTT\n\n'.length, -1).split('\n\n');
  return blocks.map((block) => {
    const lines = block.split('\n');
    expect(lines).toHaveLength(2);
    const m = /^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$/.exec(
      lines[0]!,
    );
    expect(m, `timing line "${lines[0]}"`).not.toBeNull();
    const v = /^<v ([^>\n]+)>(.*)$/.exec(lines[1]!);
    expect(v, `voice span in "${lines[1]}"`).not.toBeNull();
    // Spec: no raw "<" or unescaped "&" in cue text outside tags, no "-->" in the payload.
    expect(v![2]!).not.toMatch(/<|>|-->|&(?!(amp|lt|gt);)/);
    expect(v![1]!).not.toMatch(/&(?!(amp|lt|gt);)/);
    const unescape = (s: string): string =>
      s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    return {
      start: toSeconds(m![1]!, m![2]!, m![3]!, m![4]!),
      end: toSeconds(m![5]!, m![6]!, m![7]!, m![8]!),
      voice: unescape(v![1]!),
      text: unescape(v![2]!),
    };
  });
}

/** Minimal zip reader (end-of-central-directory → central directory → local headers). */
function unzip(buf: Buffer): Map<string, Buffer> {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd).toBeGreaterThanOrEqual(0);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    expect(buf.readUInt32LE(p)).toBe(0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    expect(buf.readUInt32LE(local)).toBe(0x04034b50);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(dataStart, dataStart + compressed);
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

describe('transcript exports', () => {
  it('SRT: numbered cues with spec timings, speaker names, long segments split, nothing lost', async () => {
    const file = await exportTranscript('srt', input);
    expect(file).toMatchObject({ contentType: 'application/x-subrip; charset=utf-8', extension: 'srt' });
    expect(file.filename).toBe('intake-call-7-draft.srt');
    const cues = parseSrt(file.body.toString('utf8'));
    expect(cues[0]!.start).toBe(0.5);
    expect(cues[0]!.end).toBe(2.42);
    expect(cues[0]!.text).toBe('Dr. Ada & co: hello thank you for calling');
    expect(cues[1]!.text).toBe('Speaker 2: a → b <i>not</i> & "quoted"');
    // 01:01:01,500: hours are written, not wrapped.
    expect(cues[2]!.start).toBe(3661.5);
    const longCues = cues.filter((c) => c.text.includes('word'));
    expect(longCues.length).toBeGreaterThan(1);
    for (const c of longCues) {
      expect(c.end - c.start).toBeLessThanOrEqual(7);
      expect(c.text.length).toBeLessThanOrEqual('Dr. Ada & co: '.length + 84);
    }
    expect(longCues.map((c) => c.text.replace('Dr. Ada & co: ', '')).join(' ')).toBe(long);
    // The edited segment keeps its text; the newline is folded.
    expect(cues.at(-1)!.text).toBe('Speaker 2: One, two — three four!');
    for (let i = 1; i < cues.length; i++) expect(cues[i]!.start).toBeGreaterThanOrEqual(cues[i - 1]!.start);
  });

  it('VTT: header, voice spans with escaped names and text, same cues as SRT', async () => {
    const file = await exportTranscript('vtt', input);
    expect(file.contentType).toBe('text/vtt; charset=utf-8');
    const cues = parseVtt(file.body.toString('utf8'));
    const srt = parseSrt((await exportTranscript('srt', input)).body.toString('utf8'));
    expect(cues.map((c) => `${c.voice}: ${c.text}`)).toEqual(srt.map((c) => c.text));
    expect(cues.map((c) => [c.start, c.end])).toEqual(srt.map((c) => [c.start, c.end]));
    expect(cues[0]!.voice).toBe('Dr. Ada & co');
    expect(file.body.toString('utf8')).toContain('<v Dr. Ada &amp; co>');
    expect(cues[1]!.text).toBe('a → b <i>not</i> & "quoted"');
  });

  it('JSON round-trips the segments and speaker names', async () => {
    const file = await exportTranscript('json', input);
    expect(file.contentType).toBe('application/json; charset=utf-8');
    const parsed = JSON.parse(file.body.toString('utf8')) as {
      title: string;
      speakers: { id: string; name: string }[];
      segments: Segment[];
    };
    expect(parsed.title).toBe(input.title);
    expect(parsed.segments).toEqual(segments);
    expect(parsed.speakers).toEqual([
      { id: 'S1', name: names.S1 },
      { id: 'S2', name: 'Speaker 2' },
    ]);
  });

  it('TXT: title and one timestamped line per segment', async () => {
    const text = (await exportTranscript('txt', input)).body.toString('utf8');
    const lines = text.split('\n');
    expect(lines[0]).toBe(input.title);
    expect(lines[1]).toBe('');
    expect(lines[2]).toBe('[00:00:00] Dr. Ada & co: hello thank you for calling');
    expect(lines[4]).toBe(`[01:01:01] Dr. Ada & co: ${long}`);
    expect(lines[5]).toBe('[01:01:40] Speaker 2: One, two — three four!');
    expect(lines).toHaveLength(segments.length + 3);
  });

  it('DOCX: a valid zip with the text in word/document.xml', async () => {
    const file = await exportTranscript('docx', input);
    expect(file.contentType).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    const parts = unzip(file.body);
    expect([...parts.keys()]).toEqual(expect.arrayContaining(['[Content_Types].xml', 'word/document.xml']));
    const xml = parts.get('word/document.xml')!.toString('utf8');
    expect(xml).toContain('hello thank you for calling');
    expect(xml).toContain('Dr. Ada &amp; co');
    expect(xml).toContain('a --&gt; b &lt;i&gt;not&lt;/i&gt; &amp;');
    expect(xml).toContain('Intake: call #7 &lt;draft&gt;');
    // Cross-check with the system's unzip when there is one.
    const zipPath = path.join(tmpRoot, 'out.docx');
    writeFileSync(zipPath, file.body);
    if (spawnSync('unzip', ['-v']).status === 0) {
      expect(execFileSync('unzip', ['-tq', zipPath]).toString()).toMatch(/No errors/);
    }
  });

  const soffice = ['libreoffice', 'soffice'].find((b) => spawnSync(b, ['--version']).status === 0);
  it.skipIf(!soffice)(
    `DOCX opens in LibreOffice${soffice ? '' : ' (skipped: LibreOffice is not installed on this machine)'}`,
    async () => {
      const dir = mkdtempSync(path.join(tmpRoot, 'lo-'));
      const docx = path.join(dir, 'transcript.docx');
      writeFileSync(docx, (await exportTranscript('docx', input)).body);
      execFileSync(soffice!, ['--headless', '--convert-to', 'txt:Text', '--outdir', dir, docx], {
        timeout: 60_000,
        env: { ...process.env, HOME: dir },
      });
      const text = readFileSync(path.join(dir, 'transcript.txt'), 'utf8');
      expect(text).toContain('hello thank you for calling');
      expect(text).toContain('Dr. Ada & co');
    },
    90_000,
  );

  it('every format handles an empty transcript; an unknown format is refused', async () => {
    for (const format of EXPORT_FORMATS) {
      const file = await exportTranscript(format, { title: '', segments: [] });
      // An SRT file with no cues is empty; every other format still has its frame.
      if (format !== 'srt') expect(file.body.length).toBeGreaterThan(0);
      expect(file.filename).toBe(`transcript.${format}`);
    }
    expect(parseVttHeaderOnly((await exportTranscript('vtt', { title: 'x', segments: [] })).body)).toBe(true);
    await expect(exportTranscript('pdf' as never, input)).rejects.toThrow(RangeError);
  });
});

function parseVttHeaderOnly(body: Buffer): boolean {
  return body.toString('utf8') === 'WEBVTT\n';
}
