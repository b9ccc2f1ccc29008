/**
 * Text fields people type (names, titles, search words): C0/C1 control characters never belong
 * in them (log and terminal injection). One pattern for every route schema.
 */
// eslint-disable-next-line no-control-regex
export const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/;
