import { useState } from 'react';

export type EditFn = (body: {
  speakers?: { id: string; name: string }[];
  segments?: { id: string; text: string }[];
}) => Promise<boolean>;

/** The speakers and, on the edited version, a Rename form each. */
export function SpeakerList({
  speakers,
  onEdit,
}: {
  speakers: { id: string; name: string }[];
  onEdit: EditFn | null;
}) {
  return (
    <ul className="speakers">
      {speakers.map((s) =>
        onEdit ? (
          <SpeakerName key={s.id} id={s.id} name={s.name} onEdit={onEdit} />
        ) : (
          <li key={s.id}>
            <span className="speaker-name">{s.name}</span>
          </li>
        ),
      )}
    </ul>
  );
}

function SpeakerName({ id, name, onEdit }: { id: string; name: string; onEdit: EditFn }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(name);
  if (!editing)
    return (
      <li>
        <span className="speaker-name">{name}</span>{' '}
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
          void onEdit({ speakers: [{ id, name: value.trim() }] }).then((ok) => ok && setEditing(false));
        }}
      >
        <label htmlFor={`speaker-${id}`}>New name for {name}</label>
        <input
          id={`speaker-${id}`}
          value={value}
          maxLength={100}
          required
          autoFocus
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </form>
    </li>
  );
}
