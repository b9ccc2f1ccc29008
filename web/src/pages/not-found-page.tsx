import { onLinkClick } from '../router';

/** Also what another organization's recording looks like: the API answers 404, never 403. */
export function NotFoundPage({ what = 'page' }: { what?: string }) {
  return (
    <section className="card narrow">
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        This {what} does not exist, or you do not have access to it. Check the address, or go back to your{' '}
        <a href="/recordings" onClick={onLinkClick}>
          recordings
        </a>
        .
      </p>
    </section>
  );
}
