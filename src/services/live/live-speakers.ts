import type { Queryable } from '../../db/database.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import { speakerName } from '../recordings/export.service.js';
import type { KeyService } from '../keys/key.service.js';
import { speakerNamesLocation } from '../recordings/transcript.service.js';

/**
 * Speaker names given while live ("Dr Rossi", the `participant` of an ingest stream) carry into
 * the final transcript. The stop keeps the labels, one per channel of the sealed WAV in channel
 * order (encrypted on the recording row); the job that stores the transcript turns them into its
 * speaker names and clears them. Several participants: the pipeline gives channel c the speaker
 * `S{c+1}`, so each is named after its stream. One participant (a mono WAV, diarized): named only
 * when the transcript has one speaker, since a room microphone may hear several voices.
 */
export const liveSpeakersLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'recordings', rowId: id, field: 'live_speakers' }) as const;

export async function keepLiveSpeakers(
  tx: Queryable,
  keys: Pick<KeyService, 'encryptJson'>,
  orgId: string,
  recordingId: string,
  labels: readonly string[],
): Promise<void> {
  if (labels.length === 0) return;
  const enc = await keys.encryptJson(tx, liveSpeakersLocation(orgId, recordingId), labels);
  await liveRecordingRepository.setSpeakers(tx, recordingId, enc);
}

/** Label → name for a transcript of `channels` channels with `speakers`, from the streams' labels. */
export function liveSpeakerNames(
  labels: readonly string[],
  result: { speakers: readonly string[]; channels: number },
): Record<string, string> {
  const names: Record<string, string> = {};
  const name = (speaker: string, label: string | undefined) => {
    // A label that is only the default name ("Speaker 1" for S1) names nothing.
    if (label && result.speakers.includes(speaker) && label !== speakerName(speaker, undefined))
      names[speaker] = label;
  };
  if (labels.length >= 2 && result.channels === labels.length)
    labels.forEach((label, c) => name(`S${c + 1}`, label));
  else if (labels.length === 1 && result.speakers.length === 1) name(result.speakers[0]!, labels[0]);
  return names;
}

/**
 * Called in the transaction that stores a transcript (JobQueueService.complete): a live
 * recording's labels become its speaker names, unless someone already named them (a retry).
 */
export async function nameLiveSpeakers(
  tx: Queryable,
  keys: Pick<KeyService, 'encryptJson' | 'decryptJson'>,
  orgId: string,
  recordingId: string,
  result: { speakers: readonly string[]; channels: number },
): Promise<'named' | 'none' | 'unreadable'> {
  const enc = await liveRecordingRepository.takeSpeakers(tx, recordingId);
  if (!enc) return 'none';
  let labels: string[];
  try {
    labels = await keys.decryptJson<string[]>(tx, liveSpeakersLocation(orgId, recordingId), enc);
  } catch {
    // Names are a nicety; the transcript is not. Labels that cannot be read (a damaged value, a
    // key gone) are dropped with the column rather than failing the job that stores the words.
    return 'unreadable';
  }
  const names = liveSpeakerNames(labels, result);
  if (Object.keys(names).length === 0) return 'none';
  const namesEnc = await keys.encryptJson(tx, speakerNamesLocation(orgId, recordingId), names);
  await liveRecordingRepository.nameSpeakersIfUnnamed(tx, recordingId, namesEnc);
  return 'named';
}
