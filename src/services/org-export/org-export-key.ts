/** Where an export's content key is bound (AAD) when wrapped by the org's data key. */
export const exportKeyLocation = (orgId: string, exportId: string) =>
  ({ orgId, table: 'org_exports', rowId: exportId, field: 'content_key' }) as const;
