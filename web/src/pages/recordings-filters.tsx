import { useState } from 'react';
import type { ListFilters, Member } from '../api-recordings';
import { STATUS_TEXT } from './recordings-row';

/**
 * Search box, speaker and filters of the recordings list. The search runs on submit (Enter or the
 * button): every search decrypts its candidates, so not on each key press; the speaker box is
 * part of the search (only that speaker's words), submitted with it. The selects and dates
 * apply at once (they are plain SQL conditions, cheap).
 */
export function RecordingFilters({
  value,
  onChange,
  owners,
}: {
  value: ListFilters;
  onChange: (f: ListFilters) => void;
  /** Null when the caller sees only their own recordings (no owner filter then). */
  owners: { me: string; members: Member[] } | null;
}) {
  const [q, setQ] = useState(value.q);
  const [speaker, setSpeaker] = useState(value.speaker);
  const set = (patch: Partial<ListFilters>) => onChange({ ...value, ...patch });
  const filtered = Boolean(value.q || value.speaker || value.status || value.owner || value.from || value.to);
  return (
    <form
      className="filters"
      role="search"
      aria-label="Search and filter recordings"
      onSubmit={(e) => {
        e.preventDefault();
        set({ q: q.trim(), speaker: speaker.trim() });
      }}
    >
      <div className="filter-search">
        <label htmlFor="rec-q">Search titles and transcripts</label>
        <div className="inline">
          <input
            id="rec-q"
            type="search"
            value={q}
            maxLength={200}
            placeholder='words, or a "quoted phrase"'
            onChange={(e) => setQ(e.target.value)}
          />
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </div>
      <div>
        <label htmlFor="rec-speaker">Said by (speaker)</label>
        <input
          id="rec-speaker"
          type="search"
          value={speaker}
          maxLength={100}
          placeholder="any speaker"
          aria-describedby="rec-speaker-hint"
          onChange={(e) => setSpeaker(e.target.value)}
        />
        <small id="rec-speaker-hint">
          A speaker&apos;s name as shown in the transcript; applies on Search.
        </small>
      </div>
      <div>
        <label htmlFor="rec-status">Status</label>
        <select
          id="rec-status"
          value={value.status}
          onChange={(e) => set({ status: e.target.value as ListFilters['status'] })}
        >
          <option value="">Any status</option>
          {(Object.keys(STATUS_TEXT) as (keyof typeof STATUS_TEXT)[]).map((s) => (
            <option key={s} value={s}>
              {STATUS_TEXT[s]}
            </option>
          ))}
        </select>
      </div>
      {owners && (
        <div>
          <label htmlFor="rec-owner">Owner</label>
          <select id="rec-owner" value={value.owner} onChange={(e) => set({ owner: e.target.value })}>
            <option value="">Anyone</option>
            <option value="me">Me</option>
            {owners.members
              .filter((m) => m.id !== owners.me)
              .map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
          </select>
        </div>
      )}
      <div>
        <label htmlFor="rec-from">Created from</label>
        <input
          id="rec-from"
          type="date"
          value={value.from}
          max={value.to || undefined}
          onChange={(e) => set({ from: e.target.value })}
        />
      </div>
      <div>
        <label htmlFor="rec-to">to</label>
        <input
          id="rec-to"
          type="date"
          value={value.to}
          min={value.from || undefined}
          onChange={(e) => set({ to: e.target.value })}
        />
      </div>
      {filtered && (
        <div className="filter-clear">
          <button
            type="button"
            onClick={() => {
              setQ('');
              setSpeaker('');
              onChange({ q: '', speaker: '', status: '', owner: '', from: '', to: '' });
            }}
          >
            Clear
          </button>
        </div>
      )}
    </form>
  );
}
