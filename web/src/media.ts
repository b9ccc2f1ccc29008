import { useSyncExternalStore } from 'react';

/** The width under which the panel switches to its one-column phone layout (styles.css). */
export const PHONE_QUERY = '(max-width: 720px)';

/**
 * Whether the screen is phone-sized now; follows rotation and resizing. Phone screens show the
 * list first and put upload, filters and menus behind buttons (docs/panel.md, Phone layout).
 */
export function usePhone(): boolean {
  return useSyncExternalStore(
    (notify) => {
      const mq = matchMedia(PHONE_QUERY);
      mq.addEventListener('change', notify);
      return () => mq.removeEventListener('change', notify);
    },
    () => matchMedia(PHONE_QUERY).matches,
  );
}
