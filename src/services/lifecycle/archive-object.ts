import { gunzipSync, gzipSync } from 'node:zlib';
import type { Queryable } from '../../db/database.js';
import {
  recordingArchiveRepository,
  type FullRecordingRow,
  type FullTranscriptRow,
} from '../../repositories/lifecycle/recording-archive.repository.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import { contentKeyLocation } from '../recordings/audio-store.service.js';
import type { KeyService } from '../keys/key.service.js';
import { titleLocation, transcriptLocation } from '../recordings/recording.service.js';
import { originalTranscriptLocation, speakerNamesLocation } from '../recordings/transcript.service.js';

/**
 * The sealed archive object of one recording: every row the recording had (the recordings row,
 * its transcript with edit state, its audio row) with each encrypted field decrypted to its exact
 * plaintext bytes, serialised as JSON, gzip-compressed, then sealed with the org's data key
 * (AES-256-GCM, AAD = org + recording_archive + archive id + "object"). Restoring re-encrypts the
 * same bytes under the recording's own locations, so what a reader gets back is identical.
 * The kept audio is not inside: its blob is already sealed (chunked cipher, random content key)
 * and is copied as a second part; its content key travels inside this object.
 */
export const archiveObjectLocation = (orgId: string, archiveId: string) =>
  ({ orgId, table: 'recording_archive', rowId: archiveId, field: 'object' }) as const;
export const archiveTitleLocation = (orgId: string, archiveId: string) =>
  ({ orgId, table: 'recording_archive', rowId: archiveId, field: 'title' }) as const;

export interface ArchivedRecording {
  recording: Omit<FullRecordingRow, 'titleEnc'> & { title: Buffer | null };
  transcript:
    | (Omit<FullTranscriptRow, 'bodyEnc' | 'speakerNamesEnc' | 'originalBodyEnc'> & {
        body: Buffer;
        speakerNames: Buffer | null;
        originalBody: Buffer | null;
      })
    | null;
  audio: { contentType: string; plainSize: number; chunkSize: number; contentKey: Buffer } | null;
}

interface Wire {
  v: 1;
  recording: Record<string, unknown> & { title: string | null };
  transcript:
    | (Record<string, unknown> & { body: string; speakerNames: string | null; originalBody: string | null })
    | null;
  audio: { contentType: string; plainSize: number; chunkSize: number; contentKey: string } | null;
}

const b64 = (b: Buffer | null) => (b ? b.toString('base64') : null);
const unb64 = (s: string | null) => (s === null ? null : Buffer.from(s, 'base64'));
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const date = (s: unknown) => (s === null ? null : new Date(s as string));

export async function sealArchiveObject(
  keys: KeyService,
  tx: Queryable,
  orgId: string,
  archiveId: string,
  a: ArchivedRecording,
): Promise<Buffer> {
  const r = a.recording;
  const wire: Wire = {
    v: 1,
    recording: {
      ...r,
      title: b64(r.title),
      createdAt: iso(r.createdAt),
      updatedAt: iso(r.updatedAt),
      completedAt: iso(r.completedAt),
    },
    transcript: a.transcript && {
      revision: a.transcript.revision,
      createdAt: iso(a.transcript.createdAt),
      updatedAt: iso(a.transcript.updatedAt),
      body: a.transcript.body.toString('base64'),
      speakerNames: b64(a.transcript.speakerNames),
      originalBody: b64(a.transcript.originalBody),
    },
    audio: a.audio && { ...a.audio, contentKey: a.audio.contentKey.toString('base64') },
  };
  const packed = gzipSync(Buffer.from(JSON.stringify(wire), 'utf8'));
  return keys.encrypt(tx, archiveObjectLocation(orgId, archiveId), packed);
}

export async function openArchiveObject(
  keys: KeyService,
  tx: Queryable,
  orgId: string,
  archiveId: string,
  sealed: Buffer,
): Promise<ArchivedRecording> {
  const packed = await keys.decrypt(tx, archiveObjectLocation(orgId, archiveId), sealed);
  const wire = JSON.parse(gunzipSync(packed).toString('utf8')) as Wire;
  if (wire.v !== 1) throw new Error('unknown archive object version');
  const r = wire.recording;
  return {
    recording: {
      ...(r as unknown as FullRecordingRow),
      title: unb64(r.title),
      createdAt: date(r.createdAt)!,
      updatedAt: date(r.updatedAt)!,
      completedAt: date(r.completedAt),
    },
    transcript: wire.transcript && {
      revision: wire.transcript.revision as number,
      createdAt: date(wire.transcript.createdAt)!,
      updatedAt: date(wire.transcript.updatedAt)!,
      body: Buffer.from(wire.transcript.body, 'base64'),
      speakerNames: unb64(wire.transcript.speakerNames),
      originalBody: unb64(wire.transcript.originalBody),
    },
    audio: wire.audio && { ...wire.audio, contentKey: Buffer.from(wire.audio.contentKey, 'base64') },
  };
}

/**
 * Everything of one (locked) recording, decrypted, inside the caller's tenant transaction; with
 * the transcript revision the archiving transaction re-checks (-1: no transcript).
 */
export async function collectArchivable(
  keys: KeyService,
  tx: Queryable,
  orgId: string,
  rec: FullRecordingRow,
): Promise<{ content: ArchivedRecording; revision: number }> {
  const open = (loc: Parameters<KeyService['decrypt']>[1], c: Uint8Array | null) =>
    c ? keys.decrypt(tx, loc, c) : Promise.resolve(null);
  const t = await recordingArchiveRepository.findTranscript(tx, rec.id);
  const audioRow = await recordingAudioRepository.find(tx, rec.id);
  const { titleEnc, ...fields } = rec;
  const content: ArchivedRecording = {
    recording: { ...fields, title: await open(titleLocation(orgId, rec.id), titleEnc) },
    transcript: t
      ? {
          revision: t.revision,
          createdAt: t.createdAt,
          updatedAt: t.updatedAt,
          body: await keys.decrypt(tx, transcriptLocation(orgId, rec.id), t.bodyEnc),
          speakerNames: await open(speakerNamesLocation(orgId, rec.id), t.speakerNamesEnc),
          originalBody: await open(originalTranscriptLocation(orgId, rec.id), t.originalBodyEnc),
        }
      : null,
    audio: audioRow
      ? {
          contentType: audioRow.contentType,
          plainSize: audioRow.plainSize,
          chunkSize: audioRow.chunkSize,
          contentKey: await keys.decrypt(tx, contentKeyLocation(orgId, rec.id), audioRow.contentKeyEnc),
        }
      : null,
  };
  return { content, revision: t?.revision ?? -1 };
}
