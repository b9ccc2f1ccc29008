import { useEffect, useState } from 'react';
import { canManageOrg, getTranscriptionStatus, type MeInfo } from '../api-org';

// Often enough to notice an engine installed meanwhile, rarely enough to cost nothing.
const RECHECK_MS = 60_000;

/**
 * For owners and admins only: a banner while nothing can transcribe the org's uploads (no engine
 * on the server, no active remote worker), with the fix. Members never ask (the route is theirs
 * to be refused anyway); their queued recordings say they are waiting.
 */
export function EngineBanner({ me }: { me: MeInfo | null }) {
  const [fix, setFix] = useState<string | null>(null);
  const admin = canManageOrg(me);

  useEffect(() => {
    if (!admin) {
      setFix(null);
      return;
    }
    let live = true;
    const check = () => {
      getTranscriptionStatus().then(
        (s) => live && setFix(s.waiting ? s.fix : null),
        // No answer is no news: the banner is a hint, not a gate.
        () => undefined,
      );
    };
    check();
    const timer = setInterval(check, RECHECK_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [admin]);

  if (!fix) return null;
  return (
    <div className="engine-banner" role="status">
      <strong>No speech-recognition engine is available.</strong> Uploads are kept and wait, queued, until one
      is: {fix}.
    </div>
  );
}
