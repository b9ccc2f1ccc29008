import { Document, HeadingLevel, Packer, Paragraph, TextRun } from 'docx';
import type { Segment } from '../../domain/transcript.js';

/**
 * Transcript exports (pure: bytes out, no storage). Every format is produced to its spec so
 * players and editors open it without complaint:
 * - txt: title, then one "[HH:MM:SS] Name: text" line per segment.
 * - srt: SubRip — cues numbered from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text, blank line.
 * - vtt: WebVTT — `WEBVTT` header, `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues whose text carries the
 *   speaker as a voice span `<v Name>`; `&`, `<`, `>` are escaped as the spec requires.
 * - json: {title, speakers:[{id, name}], segments} (the API's transcript shape).
 * - docx: Office Open XML via the `docx` package (title, then a paragraph per segment).
 * Subtitle cues are cut at word boundaries to at most 7 s and 84 characters (two lines' worth)
 * so long segments stay readable on screen. Text is kept on one line per cue: a newline or a
 * `-->` inside user-edited text could otherwise end a cue or fake a timing line.
 */
export const EXPORT_FORMATS = ['txt', 'srt', 'vtt', 'json', 'docx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportInput {
  title: string;
  /** Speaker label → display name; labels without one show as "Speaker N". */
  speakers?: Readonly<Record<string, string>>;
  segments: readonly Segment[];
}

export interface ExportFile {
  body: Buffer;
  contentType: string;
  extension: ExportFormat;
  /** A safe download name derived from the title. */
  filename: string;
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  txt: 'text/plain; charset=utf-8',
  srt: 'application/x-subrip; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8',
  json: 'application/json; charset=utf-8',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
};

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;
const CUE_MAX_SECONDS = 7;
const CUE_MAX_CHARS = 84;

export async function exportTranscript(format: ExportFormat, input: ExportInput): Promise<ExportFile> {
  const segments = [...input.segments].sort((a, b) => a.start - b.start || a.end - b.end);
  const name = (label: string): string => speakerName(label, input.speakers);
  let body: Buffer;
  switch (format) {
    case 'txt':
      body = Buffer.from(toTxt(input.title, segments, name), 'utf8');
      break;
    case 'srt':
      body = Buffer.from(toSrt(segments, name), 'utf8');
      break;
    case 'vtt':
      body = Buffer.from(toVtt(segments, name), 'utf8');
      break;
    case 'json':
      body = Buffer.from(toJson(input.title, segments, input.speakers), 'utf8');
      break;
    case 'docx':
      body = await toDocx(input.title, segments, name);
      break;
    default:
      throw new RangeError(`unknown export format ${String(format)}`);
  }
  return {
    body,
    contentType: CONTENT_TYPES[format],
    extension: format,
    filename: `${slug(input.title)}.${format}`,
  };
}

export function speakerName(label: string, names: Readonly<Record<string, string>> | undefined): string {
  const given = names && Object.hasOwn(names, label) ? oneLine(names[label]!) : '';
  if (given) return given;
  const n = /^S(\d+)$/.exec(label);
  return n ? `Speaker ${n[1]}` : oneLine(label) || 'Speaker';
}

function toTxt(title: string, segments: readonly Segment[], name: (l: string) => string): string {
  const lines = [oneLine(title), ''];
  for (const s of segments) lines.push(`[${clock(s.start, '')}] ${name(s.speaker)}: ${oneLine(s.text)}`);
  return lines.join('\n') + '\n';
}

function toSrt(segments: readonly Segment[], name: (l: string) => string): string {
  return cues(segments)
    .map(
      (c, i) =>
        `${i + 1}\n${clock(c.start, ',')} --> ${clock(c.end, ',')}\n${name(c.speaker)}: ${noArrow(c.text)}\n`,
    )
    .join('\n');
}

function toVtt(segments: readonly Segment[], name: (l: string) => string): string {
  const body = cues(segments).map(
    (c) =>
      `${clock(c.start, '.')} --> ${clock(c.end, '.')}\n<v ${escapeVtt(name(c.speaker))}>${escapeVtt(noArrow(c.text))}\n`,
  );
  return ['WEBVTT\n', ...body].join('\n');
}

function toJson(
  title: string,
  segments: readonly Segment[],
  names: Readonly<Record<string, string>> | undefined,
): string {
  const labels = [...new Set(segments.map((s) => s.speaker))];
  return (
    JSON.stringify(
      {
        title,
        speakers: labels.map((id) => ({ id, name: speakerName(id, names) })),
        segments: segments.map((s) => ({
          id: s.id,
          speaker: s.speaker,
          start: s.start,
          end: s.end,
          text: s.text,
          words: s.words.map((w) => ({ w: w.w, start: w.start, end: w.end, conf: w.conf })),
        })),
      },
      null,
      2,
    ) + '\n'
  );
}

async function toDocx(
  title: string,
  segments: readonly Segment[],
  name: (l: string) => string,
): Promise<Buffer> {
  const doc = new Document({
    title: oneLine(title),
    creator: 'Sotto',
    sections: [
      {
        children: [
          new Paragraph({ heading: HeadingLevel.TITLE, children: [new TextRun(oneLine(title))] }),
          ...segments.map(
            (s) =>
              new Paragraph({
                spacing: { after: 160 },
                children: [
                  new TextRun({ text: `${name(s.speaker)} `, bold: true }),
                  new TextRun({ text: `[${clock(s.start, '')}]`, color: '666666' }),
                  new TextRun({ text: oneLine(s.text), break: 1 }),
                ],
              }),
          ),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

interface Cue {
  speaker: string;
  start: number;
  end: number;
  text: string;
}

/**
 * Cuts segments into cues. Word times are used when the text still matches the words; an edited
 * segment whose tokens no longer line up gets times spread evenly over its span.
 */
function cues(segments: readonly Segment[]): Cue[] {
  const out: Cue[] = [];
  for (const s of segments) {
    const tokens = oneLine(s.text).split(' ').filter(Boolean);
    if (tokens.length === 0) continue;
    const span = Math.max(0, s.end - s.start);
    const timed =
      tokens.length === s.words.length
        ? tokens.map((t, i) => ({ t, start: s.words[i]!.start, end: s.words[i]!.end }))
        : tokens.map((t, i) => ({
            t,
            start: s.start + (span * i) / tokens.length,
            end: s.start + (span * (i + 1)) / tokens.length,
          }));
    let cur: { start: number; end: number; words: string[] } | undefined;
    const flush = (): void => {
      if (cur) out.push({ speaker: s.speaker, start: cur.start, end: cur.end, text: cur.words.join(' ') });
    };
    for (const w of timed) {
      const length = cur ? cur.words.join(' ').length + 1 + w.t.length : 0;
      if (!cur || w.end - cur.start > CUE_MAX_SECONDS || length > CUE_MAX_CHARS) {
        flush();
        cur = { start: w.start, end: w.end, words: [] };
      }
      cur.words.push(w.t);
      cur.end = Math.max(cur.end, w.end);
    }
    flush();
  }
  // Cues must not run backwards or have zero length (some players drop them).
  for (const c of out) {
    c.start = Math.max(0, c.start);
    if (c.end <= c.start) c.end = c.start + 0.001;
  }
  return out;
}

/** HH:MM:SS plus `,mmm` / `.mmm` (sep '' = no milliseconds). */
export function clock(seconds: number, sep: '' | ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(totalMs / 3_600_000);
  const m = Math.floor((totalMs % 3_600_000) / 60_000);
  const s = Math.floor((totalMs % 60_000) / 1000);
  const ms = totalMs % 1000;
  const hms = `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}`;
  return sep ? `${hms}${sep}${pad(ms, 3)}` : hms;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Collapses all whitespace (newlines included) and strips control characters. */
function oneLine(text: string): string {
  return text.replace(CONTROL_CHARS, ' ').replace(/\s+/g, ' ').trim();
}

function noArrow(text: string): string {
  return text.replace(/-->/g, '→');
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function slug(title: string): string {
  const s = title
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .replace(/[\s_-]+/g, '-')
    .toLowerCase()
    .slice(0, 80)
    .replace(/-+$/, '');
  return s || 'transcript';
}
