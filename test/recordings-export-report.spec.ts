/**
 * GET /recordings/:id/export and /report. The first block writes a transcript through the
 * repository and key service (exact, known segments, so every number can be checked); the
 * second uploads a corpus recording and runs the real pipeline end to end before exporting.
 * Exports are parsed back with strict readers (same rules as test/export-formats.spec.ts).
 */
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

interface Cue {
  start: number;
  end: number;
  text: string;
}
interface Word {
  w: string;
  start: number;
  end: number;
  conf: number;
}
interface Segment {
  id: string;
  speaker: string;
  start: number;
  end: number;
  text: string;
  words: Word[];
}

const secs = (h: string, m: string, s: string, ms: string) => +h * 3600 + +m * 60 + +s + +ms / 1000;

function parseSrt(text: string): Cue[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n\n')
    .map((block, i) => {
      const [n, timing, ...body] = block.split('\n');
      expect(n).toBe(String(i + 1));
      const m = /^(\d{2}):([0-5]\d):([0-5]\d),(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d),(\d{3})$/.exec(
        timing ?? '',
      );
      expect(m, `timing "${timing}"`).not.toBeNull();
      expect(body.length).toBeGreaterThan(0);
      return {
        start: secs(m![1]!, m![2]!, m![3]!, m![4]!),
        end: secs(m![5]!, m![6]!, m![7]!, m![8]!),
        text: body.join('\n'),
      };
    });
}

function parseVtt(text: string): (Cue & { voice: string })[] {
  expect(text.startsWith('WEBVTT\n\n')).toBe(true);
  return text
    .slice('WEBVTT\n\n'.length, -1)
    .split('\n\n')
    .map((block) => {
      const [timing, body, ...rest] = block.split('\n');
      expect(rest).toEqual([]);
      const m = /^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$/.exec(
        timing ?? '',
      );
      expect(m, `timing "${timing}"`).not.toBeNull();
      const v = /^<v ([^>]+)>(.*)$/.exec(body ?? '');
      expect(v, `cue "${body}"`).not.toBeNull();
      const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
      return {
        start: secs(m![1]!, m![2]!, m![3]!, m![4]!),
        end: secs(m![5]!, m![6]!, m![7]!, m![8]!),
        voice: unescape(v![1]!),
        text: unescape(v![2]!),
      };
    });
}

/** Minimal zip reader: end of central directory → central directory → local headers. */
function unzip(buf: Buffer): Map<string, Buffer> {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd).toBeGreaterThanOrEqual(0);
  const files = new Map<string, Buffer>();
  let p = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < buf.readUInt16LE(eocd + 10); i++) {
    expect(buf.readUInt32LE(p)).toBe(0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    expect(buf.readUInt32LE(local)).toBe(0x04034b50);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + size);
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    p += 46 + nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return files;
}

/** Checks the download headers and returns the parsed filename* value. */
function checkDownload(res: LightMyRequestResponse, type: string, ext: string): string {
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  expect(res.headers['content-type']).toBe(type);
  expect(res.headers['cache-control']).toBe('no-store');
  const cd = String(res.headers['content-disposition']);
  const m = /^attachment; filename="([A-Za-z0-9._-]+)"; filename\*=UTF-8''([A-Za-z0-9%._~!-]+)$/.exec(cd);
  expect(m, cd).not.toBeNull();
  expect(m![1]!.endsWith(`.${ext}`)).toBe(true);
  return decodeURIComponent(m![2]!);
}

const segments = [
  seg(1, 'S1', 0, 'welcome to the weekly budget meeting'),
  seg(2, 'S2', 4, 'thanks the budget looks fine'),
  seg(3, 'S1', 7, 'great then we approve the budget today'),
  // Overlaps S1 by 1 s (an interruption: S1 had ≥ 0.5 s left).
  seg(4, 'S2', 9.5, 'wait one question'),
];

describe(`recordings export and report (${backendLabel})`, () => {
  let t: TestApp;
  let member: TestUser;
  let colleague: TestUser;
  let id: string;
  const ip = freshIp();
  const title = 'Réunion budget: "Q3" / <draft>';

  const get = (u: TestUser, url: string) =>
    t.app.inject({ method: 'GET', url, headers: bearer(u.accessToken), remoteAddress: ip });
  const exp = (format: string, who = member, rid = id) =>
    get(who, `/api/v1/recordings/${rid}/export?format=${format}`);

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    member = await createOrgWithUser(t.services, { role: 'member' });
    colleague = await addUser(t.services, member.orgId, { role: 'member' });
    id = await seedTranscript(t.services, member, { title, segments });
    const edit = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/recordings/${id}/transcript`,
      headers: bearer(member.accessToken),
      payload: {
        revision: 0,
        speakers: [{ id: 'S1', name: 'Chair & <Host>' }],
        segments: [{ id: 'seg-0004', text: 'wait, I have one more question' }],
      },
      remoteAddress: ip,
    });
    expect(edit.statusCode, edit.body).toBe(200);
  });
  afterAll(async () => t?.close());

  it('txt: title, then one timed line per segment with current names and text', async () => {
    const res = await exp('txt');
    expect(checkDownload(res, 'text/plain; charset=utf-8', 'txt')).toBe('Réunion budget: Q3 <draft>.txt');
    const lines = res.body.split('\n');
    expect(lines[0]).toBe(title);
    expect(lines.slice(2, 6)).toEqual([
      '[00:00:00] Chair & <Host>: welcome to the weekly budget meeting',
      '[00:00:04] Speaker 2: thanks the budget looks fine',
      '[00:00:07] Chair & <Host>: great then we approve the budget today',
      '[00:00:09] Speaker 2: wait, I have one more question',
    ]);
  });

  it('srt and vtt parse back, cover every word, and carry the names', async () => {
    const srt = parseSrt((await exp('srt')).body);
    expect(checkDownload(await exp('srt'), 'application/x-subrip; charset=utf-8', 'srt')).toMatch(/\.srt$/);
    expect(srt.map((c) => c.text.replace(/^[^:]+: /, '')).join(' ')).toBe(
      segments
        .map((s) => s.text)
        .join(' ')
        .replace('wait one question', 'wait, I have one more question'),
    );
    expect(srt[0]).toMatchObject({ start: 0, text: 'Chair & <Host>: welcome to the weekly budget meeting' });
    const vttRes = await exp('vtt');
    checkDownload(vttRes, 'text/vtt; charset=utf-8', 'vtt');
    const vtt = parseVtt(vttRes.body);
    expect(vtt.map((c) => c.voice)).toEqual(['Chair & <Host>', 'Speaker 2', 'Chair & <Host>', 'Speaker 2']);
    expect(vtt.at(-1)).toMatchObject({ text: 'wait, I have one more question', start: 9.5 });
    for (const c of [...srt, ...vtt]) expect(c.end).toBeGreaterThan(c.start);
  });

  it('json round-trips the transcript as GET /transcript shows it', async () => {
    const res = await exp('json');
    checkDownload(res, 'application/json; charset=utf-8', 'json');
    const file = res.json() as { title: string; speakers: unknown; segments: Segment[] };
    const current = (await get(member, `/api/v1/recordings/${id}/transcript`)).json();
    expect(file.title).toBe(title);
    expect(file.speakers).toEqual(current.speakers);
    expect(file.segments).toEqual(current.segments.map(({ edited: _e, ...s }: { edited: boolean }) => s));
  });

  it('docx is a valid Office Open XML zip holding the text', async () => {
    const res = await exp('docx');
    checkDownload(res, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'docx');
    const files = unzip(res.rawPayload);
    expect(files.has('[Content_Types].xml')).toBe(true);
    const xml = files.get('word/document.xml')!.toString('utf8');
    expect(xml).toContain('wait, I have one more question');
    expect(xml).toContain('Chair &amp; &lt;Host&gt;');
  });

  it('a bad or missing format is 400; a not-done transcript is 409; others get 404', async () => {
    for (const f of ['pdf', 'TXT', '', 'txt&format=srt', '../etc'])
      expect((await exp(f)).statusCode, f).toBe(400);
    expect((await get(member, `/api/v1/recordings/${id}/export`)).statusCode).toBe(400);
    expect((await get(member, `/api/v1/recordings/${id}/export?format=txt&x=1`)).statusCode).toBe(400);
    const pending = await seedTranscript(t.services, member, { done: false });
    expect((await exp('txt', member, pending)).statusCode).toBe(409);
    expect((await get(member, `/api/v1/recordings/${pending}/report`)).statusCode).toBe(409);
    expect((await exp('txt', colleague)).statusCode).toBe(404);
    expect((await get(colleague, `/api/v1/recordings/${id}/report`)).statusCode).toBe(404);
  });

  it('an untitled recording downloads as "transcript"', async () => {
    const untitled = await seedTranscript(t.services, member, { segments });
    const res = await exp('txt', member, untitled);
    expect(checkDownload(res, 'text/plain; charset=utf-8', 'txt')).toBe('Transcript.txt');
    expect(res.headers['content-disposition']).toContain('filename="transcript.txt"');
  });

  it('the report matches the transcript: talk time, words, turns, overlaps, names', async () => {
    const res = await get(member, `/api/v1/recordings/${id}/report`);
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json();
    const current: Segment[] = (await get(member, `/api/v1/recordings/${id}/transcript`)).json().segments;
    for (const sp of r.speakers as {
      speaker: string;
      name: string;
      talkSeconds: number;
      words: number;
      turns: number;
    }[]) {
      const mine = current.filter((s) => s.speaker === sp.speaker);
      expect(sp.talkSeconds).toBeCloseTo(
        mine.reduce((n, s) => n + s.end - s.start, 0),
        2,
      );
      expect(sp.words).toBe(mine.reduce((n, s) => n + s.words.length, 0));
      expect(sp.turns).toBe(2);
    }
    expect(r.speakers.map((s: { name: string }) => s.name)).toEqual(['Chair & <Host>', 'Speaker 2']);
    // The edited segment has 6 words now, not 3.
    expect(r.speakers[1].words).toBe(5 + 6);
    expect(r.turns).toBe(4);
    expect(r.overlaps).toBe(1);
    expect(r.interruptions).toBe(1);
    expect(r.topKeywords[0]).toEqual({ word: 'budget', count: 3 });
    expect(r.durationSeconds).toBeGreaterThanOrEqual(r.speechSeconds);
    expect(r.speechSeconds + r.silenceSeconds).toBeCloseTo(r.durationSeconds, 1);
  });
});

describe.skipIf(!hasCorpus)(
  `export and report of a real transcription, end to end (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let user: TestUser;
    let id: string;
    const ip = freshIp();
    const get = (url: string) =>
      t.app.inject({ method: 'GET', url, headers: bearer(user.accessToken), remoteAddress: ip });

    beforeAll(async () => {
      const r = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' });
      t = await startTestApp({ env: r.env });
      user = await createOrgWithUser(t.services, { role: 'owner' });
      const res = await upload(t, user.accessToken, ip, readFileSync(corpusFile('solo-03', 'wav')), {
        title: 'Note about Monday',
        language: 'en',
      });
      expect(res.statusCode, res.body).toBe(202);
      id = res.json().id;
      // Before the worker runs: not ready.
      expect((await get(`/api/v1/recordings/${id}/export?format=txt`)).statusCode).toBe(409);
      await t.services.jobs.start();
      const done = await pollRecording(
        t,
        user.accessToken,
        ip,
        id,
        (b) => b.status === 'done' || b.status === 'failed',
        300_000,
      );
      expect(done.status).toBe('done');
    }, 320_000);
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
    });

    it('every format exports what GET /transcript holds, and the report agrees', async () => {
      const tr = (await get(`/api/v1/recordings/${id}/transcript`)).json() as { segments: Segment[] };
      const words = tr.segments.flatMap((s) => s.text.split(' ').filter(Boolean));
      expect(words.length).toBeGreaterThan(10);
      expect(words.join(' ').toLowerCase()).toMatch(/meeting|budget|monday|plan/);

      const txt = await get(`/api/v1/recordings/${id}/export?format=txt`);
      expect(checkDownload(txt, 'text/plain; charset=utf-8', 'txt')).toBe('Note about Monday.txt');
      expect(txt.body.split('\n')[0]).toBe('Note about Monday');
      expect(txt.body).toContain(tr.segments[0]!.text);

      const srt = parseSrt((await get(`/api/v1/recordings/${id}/export?format=srt`)).body);
      expect(srt.flatMap((c) => c.text.replace(/^[^:]+: /, '').split(' '))).toEqual(words);
      const vtt = parseVtt((await get(`/api/v1/recordings/${id}/export?format=vtt`)).body);
      expect(vtt.flatMap((c) => c.text.split(' '))).toEqual(words);
      const json = (await get(`/api/v1/recordings/${id}/export?format=json`)).json();
      expect(json.segments.map((s: Segment) => s.text)).toEqual(tr.segments.map((s) => s.text));
      const docx = await get(`/api/v1/recordings/${id}/export?format=docx`);
      const xml = unzip(docx.rawPayload).get('word/document.xml')!.toString('utf8');
      expect(xml).toContain(tr.segments[0]!.text.split(' ').slice(0, 3).join(' '));

      const report = (await get(`/api/v1/recordings/${id}/report`)).json();
      expect(report.speakers.reduce((n: number, s: { words: number }) => n + s.words, 0)).toBe(
        tr.segments.reduce((n, s) => n + s.words.length, 0),
      );
      expect(report.durationSeconds).toBeCloseTo(9.14, 0);
      expect(report.speechSeconds).toBeGreaterThan(3);
      expect(report.speechSeconds).toBeLessThanOrEqual(report.durationSeconds);
      expect(report.speakers[0].name).toBe('Speaker 1');
    });
  },
);
