import type { Report } from '../api';
import { clock } from '../format';
import { TurnTimeline } from './report-timeline';
import { speakerColours } from './speaker-colour';

const BAR_H = 22;
const GAP = 10;
const LABEL_W = 110;
const CHART_W = 420;

/** Talk time per speaker as a plain SVG bar chart (no chart library, no inline styles). */
function TalkTimeChart({ report }: { report: Report }) {
  const speakers = report.speakers;
  const max = Math.max(1, ...speakers.map((s) => s.talkSeconds));
  const height = speakers.length * (BAR_H + GAP) + GAP;
  const colour = speakerColours(speakers.map((s) => s.speaker));
  return (
    <svg
      className="chart"
      viewBox={`0 0 ${CHART_W} ${height}`}
      role="img"
      aria-labelledby="talk-chart-title"
      preserveAspectRatio="xMinYMin meet"
    >
      <title id="talk-chart-title">
        Talk time per speaker:{' '}
        {speakers.map((s) => `${s.name} ${clock(s.talkSeconds)} (${Math.round(s.share * 100)}%)`).join(', ')}
      </title>
      {speakers.map((s, i) => {
        const y = GAP + i * (BAR_H + GAP);
        const w = Math.max(2, ((CHART_W - LABEL_W - 70) * s.talkSeconds) / max);
        return (
          <g key={s.speaker}>
            <text x={0} y={y + BAR_H * 0.7} className="chart-label">
              {s.name.length > 14 ? `${s.name.slice(0, 13)}…` : s.name}
            </text>
            <rect
              x={LABEL_W}
              y={y}
              width={w}
              height={BAR_H}
              rx={3}
              className={`bar bar-${colour.get(s.speaker) ?? 0}`}
            />
            <text x={LABEL_W + w + 6} y={y + BAR_H * 0.7} className="chart-value">
              {Math.round(s.share * 100)}%
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/**
 * The report: numbers, talk time per speaker, the turn timeline (from the transcript's segments,
 * when they are loaded), a per-speaker table (talk time, turns, speaking rate, longest
 * monologue) and keywords.
 */
export function ReportView({
  report,
  segments = null,
  duration = 0,
}: {
  report: Report;
  segments?: readonly { speaker: string; start: number; end: number }[] | null;
  duration?: number;
}) {
  return (
    <>
      <dl className="numbers">
        <div>
          <dt>Length</dt>
          <dd>{clock(report.durationSeconds)}</dd>
        </div>
        <div>
          <dt>Speech</dt>
          <dd>{clock(report.speechSeconds)}</dd>
        </div>
        <div>
          <dt>Silence</dt>
          <dd>{clock(report.silenceSeconds)}</dd>
        </div>
        <div>
          <dt>Turns</dt>
          <dd>{report.turns}</dd>
        </div>
        <div>
          <dt>Overlaps</dt>
          <dd>{report.overlaps}</dd>
        </div>
        <div>
          <dt>Interruptions</dt>
          <dd>{report.interruptions}</dd>
        </div>
      </dl>
      <h3>Talk time</h3>
      {report.speakers.length === 0 ? (
        <p className="empty">Nobody spoke.</p>
      ) : (
        <TalkTimeChart report={report} />
      )}
      {segments && segments.length > 0 && (
        <>
          <h3>Turns over time</h3>
          <TurnTimeline report={report} segments={segments} duration={duration} />
        </>
      )}
      {/* Its own focusable, named scroll region: on a phone the table is wider than the card. */}
      <div className="table-scroll" tabIndex={0} role="region" aria-label="Per speaker">
        <table className="report-table stack">
          <caption className="visually-hidden">Per speaker</caption>
          <thead>
            <tr>
              <th scope="col">Speaker</th>
              <th scope="col">Talk time</th>
              <th scope="col">Turns</th>
              <th scope="col">Words/min</th>
              <th scope="col">Longest</th>
            </tr>
          </thead>
          <tbody>
            {report.speakers.map((s) => (
              <tr key={s.speaker}>
                {/* data-label: the column's name beside each value when a phone stacks the rows. */}
                <th scope="row" data-label="Speaker">
                  {s.name}
                </th>
                <td data-label="Talk time">{clock(s.talkSeconds)}</td>
                <td data-label="Turns">{s.turns}</td>
                <td data-label="Words/min">{Math.round(s.wordsPerMinute)}</td>
                <td data-label="Longest">{clock(s.longestMonologueSeconds)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.topKeywords.length > 0 && (
        <>
          <h3>Keywords</h3>
          <ul className="keywords">
            {report.topKeywords.slice(0, 12).map((k) => (
              <li key={k.word}>
                {k.word} <span className="meta">×{k.count}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}
