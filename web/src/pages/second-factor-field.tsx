/**
 * The second step of signing in, shared by the login page and the sign-in-again dialog: the
 * authenticator app's code, or a recovery code, with the switch between the two.
 */
export function SecondFactorField({
  id,
  step,
  code,
  onCode,
  onSwitch,
  describedBy,
}: {
  id: string;
  step: 'totp' | 'recovery';
  code: string;
  onCode: (code: string) => void;
  /** The other kind of code was chosen (the caller clears what was typed). */
  onSwitch: (next: 'totp' | 'recovery') => void;
  /** The id of the error that refused this code, when one did (marks the field invalid). */
  describedBy?: string | undefined;
}) {
  return (
    <>
      <p>
        {step === 'totp'
          ? 'Enter the 6-digit code from your authenticator app.'
          : 'Enter one of your unused recovery codes. Each code works once.'}
      </p>
      <label htmlFor={id}>{step === 'totp' ? 'One-time code' : 'Recovery code'}</label>
      <input
        id={id}
        autoFocus
        required
        autoComplete="one-time-code"
        inputMode={step === 'totp' ? 'numeric' : 'text'}
        value={code}
        aria-invalid={describedBy ? true : undefined}
        aria-describedby={describedBy}
        onChange={(e) => onCode(e.target.value)}
      />
      <button type="button" className="link" onClick={() => onSwitch(step === 'totp' ? 'recovery' : 'totp')}>
        {step === 'totp' ? 'Use a recovery code instead' : 'Use the authenticator app instead'}
      </button>
    </>
  );
}
