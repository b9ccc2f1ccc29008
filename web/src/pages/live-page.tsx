/** Live recording screens (start, capture, live transcript). Filled in by the live-screen work. */
export function LiveStartPage() {
  return (
    <section className="card narrow">
      <h1 tabIndex={-1}>Live recording</h1>
      <p>Coming soon.</p>
    </section>
  );
}

export function LiveRecordingPage({ id }: { id: string }) {
  return (
    <section className="card narrow">
      <h1 tabIndex={-1}>Live recording</h1>
      <p>Recording {id}</p>
    </section>
  );
}
