/** Organization administration (admins and owners). Filled in by the org-admin work. */
export function OrgPage({ section }: { section: string }) {
  return (
    <section className="card narrow">
      <h1 tabIndex={-1}>Organization</h1>
      <p>Section: {section}</p>
    </section>
  );
}
