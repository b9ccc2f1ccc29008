import { useEffect, useRef, type ReactNode } from 'react';

/**
 * A panel that slides over the page on a phone (filters, upload), on the native <dialog>:
 * showModal() makes the page behind inert, Escape and "Done" close it, and the browser puts focus
 * back on the button that opened it. Its content stays mounted while closed, so what was typed
 * (and an upload in progress) survives closing and opening it again.
 */
export function Drawer({
  id,
  title,
  open,
  onClose,
  children,
}: {
  id: string;
  title: string;
  open: boolean;
  onClose: () => void;
  children: ReactNode;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);

  return (
    <dialog
      ref={dialog}
      id={id}
      className="drawer"
      aria-labelledby={`${id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <div className="drawer-head">
        <h2 id={`${id}-title`}>{title}</h2>
        <button type="button" onClick={onClose}>
          Done
        </button>
      </div>
      {children}
    </dialog>
  );
}
