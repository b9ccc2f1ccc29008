import { useId } from 'react';
import type { Report } from '../api';
import { clock } from '../format';
import { speakerColours } from './speaker-colour';

export interface Turn {
  speaker: string;
  start: number;
  end: number;
}

/**
 * Turns from the transcript's segments, with the report's definition (report.service.ts): a
 * maximal run of time-ordered segments by one speaker. The report API gives counts only, so the
 * panel derives the spans itself.
 */
export function turnsOf(segments: readonly { speaker: string; start: number; end: number }[]): Turn[] {
  const sorted = [...segments].sort((a, b) => a.start - b.start || a.end - b.end);
  const turns: Turn[] = [];
  for (const s of sorted) {
    const last = turns.at(-1);
    if (last && last.speaker === s.speaker) last.end = Math.max(last.end, s.end);
    else turns.push({ speaker: s.speaker, start: s.start, end: s.end });
  }
  return turns;
}

const LANE_H = 20;
const GAP = 8;
const LABEL_W = 110;
const CHART_W = 420;
const AXIS_H = 18;

/**
 * Who spoke when: one lane per speaker, a bar per turn across the recording's length. An image
 * to assistive technology (role="img", a one-sentence summary), with every turn in a visually
 * hidden table for those who want the detail.
 */
export function TurnTimeline({
  report,
  segments,
  duration,
}: {
  report: Report;
  segments: readonly { speaker: string; start: number; end: number }[];
  duration: number;
}) {
  const id = useId();
  const turns = turnsOf(segments);
  const names = new Map(report.speakers.map((s) => [s.speaker, s.name]));
  const lanes = [...report.speakers.map((s) => s.speaker)];
  for (const t of turns) if (!lanes.includes(t.speaker)) lanes.push(t.speaker);
  const total = Math.max(duration, report.durationSeconds, ...turns.map((t) => t.end), 1);
  const plotW = CHART_W - LABEL_W - 10;
  const x = (s: number) => LABEL_W + (plotW * s) / total;
  const height = lanes.length * (LANE_H + GAP) + GAP + AXIS_H;
  const name = (sp: string) => names.get(sp) ?? sp;
  const counts = lanes.map((sp) => `${name(sp)} ${turns.filter((t) => t.speaker === sp).length}`).join(', ');
  const summary = `Turn timeline: ${turns.length} turn${turns.length === 1 ? '' : 's'} over ${clock(total)}; turns per speaker: ${counts}.`;
  const axisY = lanes.length * (LANE_H + GAP) + GAP;
  const colour = speakerColours(lanes);
  return (
    <figure className="timeline">
      <svg
        className="chart timeline-chart"
        viewBox={`0 0 ${CHART_W} ${height}`}
        role="img"
        aria-label={summary}
        aria-describedby={`${id}-table`}
        preserveAspectRatio="xMinYMin meet"
      >
        {lanes.map((sp, i) => {
          const y = GAP + i * (LANE_H + GAP);
          const label = name(sp);
          return (
            <g key={sp}>
              <text x={0} y={y + LANE_H * 0.7} className="chart-label">
                {label.length > 14 ? `${label.slice(0, 13)}…` : label}
              </text>
              <rect x={LABEL_W} y={y} width={plotW} height={LANE_H} className="lane" />
              {turns
                .filter((t) => t.speaker === sp)
                .map((t) => (
                  <rect
                    key={t.start}
                    x={x(t.start)}
                    y={y + 2}
                    width={Math.max(1.5, x(t.end) - x(t.start))}
                    height={LANE_H - 4}
                    rx={2}
                    className={`bar bar-${colour.get(sp) ?? 0} turn`}
                  />
                ))}
            </g>
          );
        })}
        <line x1={LABEL_W} x2={LABEL_W + plotW} y1={axisY} y2={axisY} className="axis" />
        {[0, 0.25, 0.5, 0.75, 1].map((f) => (
          <text
            key={f}
            x={x(total * f)}
            y={axisY + AXIS_H - 4}
            className="chart-value"
            textAnchor={f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}
          >
            {clock(total * f)}
          </text>
        ))}
      </svg>
      <table className="visually-hidden" id={`${id}-table`}>
        <caption>Turns in order</caption>
        <thead>
          <tr>
            <th scope="col">Speaker</th>
            <th scope="col">From</th>
            <th scope="col">To</th>
          </tr>
        </thead>
        <tbody>
          {turns.map((t) => (
            <tr key={`${t.speaker}-${t.start}`}>
              {/* A plain cell: the per-speaker table above already has the speakers as row headers. */}
              <td>{name(t.speaker)}</td>
              <td>{clock(t.start)}</td>
              <td>{clock(t.end)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
