/**
 * Diarization on the shared corpus: DER per file for mono (clustering diarizer) and stereo
 * (channel diarizer), speakers found against the reference, and the real-time factor
 * (processing time / audio duration; lower is faster). Numbers for the README, never pass/fail.
 *
 * DER is md-eval's definition (missed + false alarm + confusion over reference speech, optimal
 * one-to-one speaker mapping), with the NIST ±0.25 s collar and, for reference, without one.
 *
 *   npx tsx bench/diarization.ts             # corpus files
 *   npx tsx bench/diarization.ts --long 10   # plus a 10-minute concatenation (scaling, RTF)
 */
import { diarizationErrorRate } from '../test/helpers/der.js';
import { diarizeChannels } from '../src/audio/diarize.js';
import { ClusteringDiarizer } from '../src/audio/diarize-cluster.js';
import type { SpeakerTurn } from '../src/domain/transcript.js';
import { corpusEntry, corpusIds, hasCorpus, noCorpusReason } from '../test/helpers/corpus.js';
import { readCorpusMono, readCorpusStereo } from '../test/helpers/corpus-audio.js';

interface Row {
  file: string;
  mode: string;
  duration: number;
  refSpeakers: number;
  found: number;
  der: number;
  der0: number;
  missed: number;
  falseAlarm: number;
  confusion: number;
  rtf: number;
}

function score(
  file: string,
  mode: string,
  duration: number,
  ref: SpeakerTurn[],
  run: () => SpeakerTurn[],
): Row {
  run(); // warm-up: JIT, so the RTF measures steady-state work
  const t0 = performance.now();
  const turns = run();
  const seconds = (performance.now() - t0) / 1000;
  const d = diarizationErrorRate(ref, turns);
  return {
    file,
    mode,
    duration,
    refSpeakers: new Set(ref.map((t) => t.speaker)).size,
    found: new Set(turns.map((t) => t.speaker)).size,
    der: d.der,
    der0: diarizationErrorRate(ref, turns, { collar: 0 }).der,
    missed: d.missed / d.total,
    falseAlarm: d.falseAlarm / d.total,
    confusion: d.confusion / d.total,
    rtf: seconds / duration,
  };
}

function main(): void {
  if (!hasCorpus) {
    console.error(noCorpusReason);
    process.exitCode = 1;
    return;
  }
  const longIdx = process.argv.indexOf('--long');
  const longMinutes = longIdx >= 0 ? Number(process.argv[longIdx + 1] ?? 10) : 0;
  const mono = new ClusteringDiarizer();
  const rows: Row[] = [];
  for (const id of corpusIds()) {
    const entry = corpusEntry(id);
    const m = readCorpusMono(id);
    const duration = m.pcm.length / m.sampleRate;
    rows.push(score(`${id}.wav`, 'mono', duration, entry.turns, () => mono.diarize(m.pcm, m.sampleRate)));
    const s = readCorpusStereo(id);
    rows.push(
      score(
        `${id}.stereo.wav`,
        'stereo',
        duration,
        entry.turns,
        () => diarizeChannels(s.channels, s.sampleRate).turns,
      ),
    );
  }
  if (longMinutes > 0) {
    // The conversations back to back; reference speakers are the TTS voices (two corpus roles
    // share flite's slt voice, and a diarizer can only tell voices apart). solo-03 is left out:
    // its festival slt voice is the same talent as flite's slt, so no labelling would be fair.
    const parts: Int16Array[] = [];
    const ref: SpeakerTurn[] = [];
    let offset = 0;
    const ids = corpusIds().filter((id) => corpusEntry(id).speakers.length > 1);
    for (let i = 0; offset < longMinutes * 60 * 16000; i++) {
      const id = ids[i % ids.length]!;
      const entry = corpusEntry(id);
      const { pcm, sampleRate } = readCorpusMono(id);
      for (const t of entry.turns)
        ref.push({
          speaker: entry.voices[t.speaker]!,
          start: t.start + offset / sampleRate,
          end: t.end + offset / sampleRate,
        });
      parts.push(pcm);
      offset += pcm.length;
    }
    const pcm = new Int16Array(offset);
    let o = 0;
    for (const p of parts) {
      pcm.set(p, o);
      o += p.length;
    }
    rows.push(
      score(`corpus × ${longMinutes} min`, 'mono', pcm.length / 16000, ref, () => mono.diarize(pcm, 16000)),
    );
  }

  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const header = [
    'file',
    'mode',
    'audio s',
    'speakers ref/found',
    'DER (±0.25 s)',
    'DER (no collar)',
    'miss',
    'FA',
    'conf',
    'RTF',
  ];
  const table = rows.map((r) => [
    r.file,
    r.mode,
    r.duration.toFixed(1),
    `${r.refSpeakers}/${r.found}`,
    pct(r.der),
    pct(r.der0),
    pct(r.missed),
    pct(r.falseAlarm),
    pct(r.confusion),
    r.rtf.toFixed(4),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  console.log(
    `\nRTF = diarization time / audio duration on this machine (${process.arch}, Node ${process.versions.node}); lower is faster.`,
  );
}

main();
