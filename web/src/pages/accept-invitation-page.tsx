/** Accepting an invitation (signed out). Filled in by the org-admin work. */
export function AcceptInvitationPage() {
  return (
    <section className="card narrow">
      <h1 tabIndex={-1}>Accept invitation</h1>
    </section>
  );
}
