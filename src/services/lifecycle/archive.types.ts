/** Shapes of the cold archive's answers (archive.service.ts, docs/lifecycle.md). */
export interface ArchiveItemView {
  id: string;
  recordingId: string;
  ownerId: string;
  title: string | null;
  recordingCreatedAt: Date;
  archivedAt: Date;
  archivedByPolicy: boolean;
  sizeBytes: number;
  hasAudio: boolean;
}

export interface DeletionReceipt {
  archiveId: string;
  recordingId: string;
  deletedAt: Date;
  deletedBy: string;
  /** SHA-256 of the sealed bytes that were destroyed (never of plaintext). */
  contentSha256: string;
  audioSha256: string | null;
  /** Ready/building org exports expired because they may hold the item. */
  exportsInvalidated: number;
}

/** Who deletes an archived item: an admin (DELETE /org/archive/:id) or the system (account deletion). */
export interface ArchiveDeletionContext {
  orgId: string;
  actorId: string | null;
  actorKind: 'user' | 'support' | 'system';
  ip?: string | undefined;
  reason: 'requested' | 'account_deleted';
}
