import { useState } from 'react';
import { speakerColours } from './speaker-colour';

/** A PATCH /transcript body without its revision (the page adds the one it shows). */
export interface TranscriptPatch {
  speakers?: { id: string; name: string }[];
  /** A corrected text, a move to another speaker, or both. */
  segments?: { id: string; text?: string; speaker?: string }[];
  /** Applied after the corrections, in order; `at` is an offset in the stored (cleaned) text. */
  ops?: ({ op: 'merge'; id: string } | { op: 'split'; id: string; at: number })[];
}

/** Saved, or why not as a sentence for beside the control; `offline`: it never reached the server. */
export type EditOutcome = { ok: true } | { ok: false; error: string; offline: boolean };
export type EditFn = (body: TranscriptPatch) => Promise<EditOutcome>;

/** The speakers and, on the edited version, a Rename form each. */
export function SpeakerList({
  speakers,
  onEdit,
}: {
  speakers: { id: string; name: string }[];
  onEdit: EditFn | null;
}) {
  const colour = speakerColours(speakers.map((s) => s.id));
  return (
    <ul className="speakers">
      {speakers.map((s) =>
        onEdit ? (
          <SpeakerName key={s.id} id={s.id} name={s.name} colour={colour.get(s.id) ?? 0} onEdit={onEdit} />
        ) : (
          <li key={s.id}>
            <span className={`speaker-name spk spk-${colour.get(s.id) ?? 0}`}>{s.name}</span>
          </li>
        ),
      )}
    </ul>
  );
}

function SpeakerName({
  id,
  name,
  colour,
  onEdit,
}: {
  id: string;
  name: string;
  colour: number;
  onEdit: EditFn;
}) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(name);
  const [error, setError] = useState<string | null>(null);
  if (!editing)
    return (
      <li>
        <span className={`speaker-name spk spk-${colour}`}>{name}</span>{' '}
        <button
          type="button"
          onClick={() => {
            setValue(name);
            setEditing(true);
          }}
          aria-label={`Rename ${name}`}
        >
          Rename
        </button>
      </li>
    );
  return (
    <li>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          void onEdit({ speakers: [{ id, name: value.trim() }] }).then((r) =>
            r.ok ? setEditing(false) : setError(r.error),
          );
        }}
      >
        <label htmlFor={`speaker-${id}`}>New name for {name}</label>
        <input
          id={`speaker-${id}`}
          value={value}
          maxLength={100}
          required
          autoFocus
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `speaker-${id}-error` : undefined}
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={() => setEditing(false)}>
          Cancel
        </button>
        {error && (
          <p className="error-inline" role="alert" id={`speaker-${id}-error`}>
            {error}
          </p>
        )}
      </form>
    </li>
  );
}
