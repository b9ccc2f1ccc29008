/**
 * One colour per speaker, the same in the transcript (the speaker chip, the speaker list) and in
 * the report's charts (talk time, turn timeline): chosen from the speaker ids in natural order
 * (S2 before S10), never from a list's display order, which differs between the two (the report
 * sorts by talk time). Six colours (styles.css `.spk-0` … `.spk-5`, `.bar-0` … `.bar-5`); a
 * seventh speaker shares the first one's.
 */
export const SPEAKER_COLOURS = 6;

export function speakerColours(ids: readonly string[]): Map<string, number> {
  const sorted = [...new Set(ids)].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return new Map(sorted.map((id, i) => [id, i % SPEAKER_COLOURS]));
}
