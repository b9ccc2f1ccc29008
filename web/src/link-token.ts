/**
 * A one-time token that arrived in a link's fragment (`#token=…`: invitations, email
 * verification). Read once, before anything can log or send the address, and then wiped from the
 * address bar and history: the token goes only into the request body that uses it.
 *
 * One reader per page module: it is memoised, because the address bar no longer has the token
 * after the first read (and React's StrictMode reads twice).
 */
export function linkTokenReader(): { take: () => string | null; forget: () => void } {
  let taken: string | null | undefined;
  return {
    take: () => {
      if (taken === undefined) {
        const m = /(?:^#|&)token=([A-Za-z0-9_-]{20,200})(?:&|$)/.exec(location.hash);
        if (location.hash) history.replaceState(null, '', location.pathname);
        taken = m?.[1] ?? null;
      }
      return taken;
    },
    /** Once used: the page shows no token again if the person comes back to it. */
    forget: () => {
      taken = null;
    },
  };
}
