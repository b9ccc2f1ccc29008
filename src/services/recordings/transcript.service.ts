import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { can } from '../../domain/roles.js';
import type { Segment, Word } from '../../domain/transcript.js';
import { applyOp, OpRefused, type SegmentOp } from '../../domain/transcript-ops.js';
import type { Database, Queryable } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  recordingRepository,
  type RecordingRow,
  type StoredTranscript,
  type Visibility,
} from '../../repositories/recordings/recording.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import { exportTranscript, speakerName, type ExportFile, type ExportFormat } from './export.service.js';
import type { KeyService } from '../keys/key.service.js';
import { requirePermission } from '../orgs/org.service.js';
import { titleLocation, transcriptLocation } from './recording.service.js';
import { buildReport, type SpeakerStats, type TranscriptReport } from './report.service.js';
import { indexRecording } from '../search/search-index.service.js';

/**
 * One finished transcript: reading it (current or machine original), editing it (speaker names,
 * corrected segment text, with optimistic concurrency), and turning it into an export file or a
 * conversation report. Visibility is the recordings' rule: members their own recordings,
 * owners/admins (and support through a grant, read-only) the whole org; anything else is 404.
 */

/** A stored segment; `edited` is set once a user corrected its text. */
export interface StoredSegment extends Segment {
  edited?: boolean;
}

/** The decrypted body_enc / original_body_enc (same JSON shape as the pipeline writes). */
interface StoredBody {
  segments: StoredSegment[];
  speakers: string[];
}

export interface TranscriptDocument {
  revision: number;
  version: TranscriptVersion;
  segments: (Segment & { edited: boolean })[];
  speakers: { id: string; name: string }[];
}

export type TranscriptVersion = 'current' | 'original';

export interface TranscriptEdit {
  /** The revision the client's edits are based on. */
  revision: number;
  speakers?: { id: string; name: string }[] | undefined;
  /** A corrected text, a move to another (existing) speaker, or both. */
  segments?: { id: string; text?: string | undefined; speaker?: string | undefined }[] | undefined;
  /** Merges and splits, applied after the corrections, in this order. */
  ops?: SegmentOp[] | undefined;
}

export interface NamedReport extends Omit<TranscriptReport, 'speakers'> {
  speakers: (SpeakerStats & { name: string })[];
}

export const originalTranscriptLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'transcripts', rowId: id, field: 'original_body' }) as const;
// Same location RecordingService reads speaker names from (it does not export its helper).
export const speakerNamesLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'transcripts', rowId: id, field: 'speaker_names' }) as const;

/** Confidence of a word the user typed: they said what it is. */
const TYPED_CONF = 1;

interface Loaded {
  row: RecordingRow;
  stored: StoredTranscript;
  body: StoredBody;
  names: Record<string, string>;
}

export class TranscriptService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async get(actor: Actor, id: string, version: TranscriptVersion = 'current'): Promise<TranscriptDocument> {
    requirePermission(actor, 'recordings.read');
    return withTenant(this.db, actor, async (tx) => {
      const t = await this.load(tx, actor, id, false);
      if (version === 'current') return document(t.body, t.names, t.stored.revision, 'current');
      // Never edited: the current body is still the machine's.
      const original = t.stored.originalBodyEnc
        ? await this.keys.decryptJson<StoredBody>(
            tx,
            originalTranscriptLocation(actor.orgId, id),
            t.stored.originalBodyEnc,
          )
        : t.body;
      // Speaker names are labels, not transcript text: the original is shown with today's names.
      return document(original, t.names, t.stored.revision, 'original');
    });
  }

  /**
   * Applies speaker renames and segment corrections as one new revision. Support staff (a
   * read-only grant) are refused with 403 like delete; someone who cannot see the recording gets
   * 404. A stale `revision` is 409: the client reloads and re-applies its edits.
   */
  async edit(actor: Actor, id: string, edit: TranscriptEdit): Promise<TranscriptDocument> {
    requirePermission(actor, 'recordings.create');
    return withTenant(this.db, actor, async (tx) => {
      const t = await this.load(tx, actor, id, true);
      if (t.stored.revision !== edit.revision) throw stale(t.stored.revision, edit.revision);

      const speakerEdits = edit.speakers ?? [];
      const segmentEdits = edit.segments ?? [];
      const unknown = [
        ...speakerEdits
          .map((s, i) => ({ i, id: s.id }))
          .filter((s) => !t.body.speakers.includes(s.id))
          .map((s) => ({ path: `body.speakers.${s.i}.id`, message: `unknown speaker id "${s.id}"` })),
        ...segmentEdits
          .map((s, i) => ({ i, id: s.id }))
          .filter((s) => !t.body.segments.some((seg) => seg.id === s.id))
          .map((s) => ({ path: `body.segments.${s.i}.id`, message: `unknown segment id "${s.id}"` })),
        ...segmentEdits
          .map((s, i) => ({ i, speaker: s.speaker }))
          .filter((s) => s.speaker !== undefined && !t.body.speakers.includes(s.speaker))
          .map((s) => ({
            path: `body.segments.${s.i}.speaker`,
            message: `unknown speaker id "${s.speaker}"`,
          })),
      ];
      if (unknown.length > 0)
        throw new AppError('validation_failed', 'The edit names ids this transcript does not have', {
          errors: unknown,
        });

      const names = { ...t.names };
      for (const s of speakerEdits) names[s.id] = s.name;
      const corrections = new Map(segmentEdits.map((s) => [s.id, s]));
      let segments: StoredSegment[] = t.body.segments.map((seg) => {
        const c = corrections.get(seg.id);
        if (!c) return seg;
        const text = c.text === undefined ? seg.text : cleanText(c.text);
        const words = c.text === undefined ? seg.words : retime(seg, text);
        return { ...seg, speaker: c.speaker ?? seg.speaker, text, words, edited: true };
      });
      for (const [i, op] of (edit.ops ?? []).entries()) {
        try {
          segments = applyOp(segments, op, retime);
        } catch (err) {
          if (!(err instanceof OpRefused)) throw err;
          throw new AppError('validation_failed', 'An edit operation cannot be applied', {
            errors: [{ path: `body.ops.${i}`, message: err.message }],
          });
        }
      }
      const body: StoredBody = { speakers: t.body.speakers, segments };

      const saved = await recordingRepository.saveTranscriptEdit(tx, {
        recordingId: id,
        expectedRevision: edit.revision,
        bodyEnc: await this.keys.encryptJson(tx, transcriptLocation(actor.orgId, id), body),
        speakerNamesEnc:
          speakerEdits.length > 0
            ? await this.keys.encryptJson(tx, speakerNamesLocation(actor.orgId, id), names)
            : null,
        // The machine transcript, kept once: later edits never overwrite it (COALESCE in SQL).
        originalBodyEnc: t.stored.originalBodyEnc
          ? null
          : await this.keys.encryptJson(tx, originalTranscriptLocation(actor.orgId, id), t.body),
        now: this.clock.now(),
      });
      // The row is locked FOR UPDATE above, so this only trips if that lock was not held.
      if (!saved) throw stale(t.stored.revision + 1, edit.revision);
      // The search index commits with the edited text (docs/search.md).
      await indexRecording(tx, this.keys, actor.orgId, id);
      const revision = edit.revision + 1;
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'transcript.edited',
        targetType: 'recording',
        targetId: id,
        ip: actor.ip,
        // Ids only: the audit log must never hold transcript text or names.
        details: {
          revision,
          segments: segmentEdits.map((s) => s.id),
          speakers: speakerEdits.map((s) => s.id),
          ...(edit.ops?.length ? { ops: edit.ops.map((o) => ({ op: o.op, id: o.id })) } : {}),
        },
      });
      return document(body, names, revision, 'current');
    });
  }

  /** The current transcript as a download, with the current speaker names. */
  async export(actor: Actor, id: string, format: ExportFormat): Promise<{ file: ExportFile; title: string }> {
    requirePermission(actor, 'recordings.read');
    const { title, body, names } = await withTenant(this.db, actor, async (tx) => {
      const t = await this.load(tx, actor, id, false);
      return { title: await this.title(tx, t.row), body: t.body, names: t.names };
    });
    // Rendering (DOCX zipping especially) runs after the transaction: no connection held.
    const file = await exportTranscript(format, {
      title,
      speakers: names,
      segments: body.segments.map(plainSegment),
    });
    return { file, title };
  }

  /** Conversation statistics of the current transcript, speakers with their display names. */
  async report(actor: Actor, id: string): Promise<NamedReport> {
    requirePermission(actor, 'recordings.read');
    const t = await withTenant(this.db, actor, (tx) => this.load(tx, actor, id, false));
    const lastEnd = Math.max(0, ...t.body.segments.map((s) => s.end));
    const report = buildReport({
      durationSeconds: t.row.durationSeconds ?? lastEnd,
      speakers: t.body.speakers,
      segments: t.body.segments,
    });
    return {
      ...report,
      speakers: report.speakers.map((s) => ({ ...s, name: speakerName(s.speaker, t.names) })),
    };
  }

  private async load(tx: Queryable, actor: Actor, id: string, forEdit: boolean): Promise<Loaded> {
    const row = await recordingRepository.find(tx, id, visibility(actor));
    if (!row) throw notFound('Recording');
    const stored = forEdit
      ? await recordingRepository.findTranscriptForEdit(tx, id)
      : await recordingRepository.findTranscriptWithHistory(tx, id);
    if (!stored) throw new AppError('conflict', `The transcript is not ready (status: ${row.status})`);
    const body = await this.keys.decryptJson<StoredBody>(
      tx,
      transcriptLocation(actor.orgId, id),
      stored.bodyEnc,
    );
    const names = stored.speakerNamesEnc
      ? await this.keys.decryptJson<Record<string, string>>(
          tx,
          speakerNamesLocation(actor.orgId, id),
          stored.speakerNamesEnc,
        )
      : {};
    return { row, stored, body, names };
  }

  private async title(tx: Queryable, row: RecordingRow): Promise<string> {
    if (!row.titleEnc) return 'Transcript';
    return this.keys.decryptString(tx, titleLocation(row.orgId, row.id), row.titleEnc);
  }
}

function document(
  body: StoredBody,
  names: Record<string, string>,
  revision: number,
  version: TranscriptVersion,
): TranscriptDocument {
  return {
    revision,
    version,
    segments: body.segments.map((s) => ({ ...plainSegment(s), edited: s.edited === true })),
    speakers: body.speakers.map((label) => ({ id: label, name: speakerName(label, names) })),
  };
}

function plainSegment(s: StoredSegment): Segment {
  return { id: s.id, speaker: s.speaker, start: s.start, end: s.end, text: s.text, words: s.words };
}

function stale(current: number, sent: number): AppError {
  return new AppError(
    'conflict',
    `The transcript was edited meanwhile (it is at revision ${current}, the edit was based on ${sent}); ` +
      'reload it and apply your changes again',
    { revision: current },
  );
}

/** One line, NFC, single spaces (the schema already refused control characters). */
function cleanText(text: string): string {
  return text.normalize('NFC').replace(/\s+/g, ' ').trim();
}

/**
 * Words for a corrected segment, so word-level consumers (subtitle cues, report word counts and
 * keywords, search snippets) agree with the new text:
 * - same number of words as before: a spelling or casing fix, the usual correction. The
 *   recognised timings are still right, so they are kept; a changed word gets conf 1.
 * - otherwise the old words cannot be aligned one to one. The segment's span is shared out over
 *   the new words in proportion to their length (longer words take longer to say, a closer
 *   guess than equal shares), all with conf 1: the user, not the engine, vouches for them.
 */
export function retime(seg: Segment, text: string): Word[] {
  const tokens = text.split(' ').filter(Boolean);
  if (tokens.length === 0) return [];
  if (tokens.length === seg.words.length)
    return tokens.map((w, i) => {
      const old = seg.words[i]!;
      return { w, start: old.start, end: old.end, conf: w === old.w ? old.conf : TYPED_CONF };
    });
  const span = Math.max(0, seg.end - seg.start);
  const total = tokens.reduce((n, t) => n + [...t].length, 0);
  let at = seg.start;
  return tokens.map((w, i) => {
    const start = at;
    // The last word ends exactly at the segment end (no rounding drift).
    const end = i === tokens.length - 1 ? seg.end : at + (span * [...w].length) / total;
    at = end;
    return { w, start: round3(start), end: round3(end), conf: TYPED_CONF };
  });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function visibility(actor: Actor): Visibility {
  return can(actor.role, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}
