/**
 * The events a webhook can subscribe to: part of the API (the route schemas list them) and of the
 * stored subscriptions, so they live in the domain rather than in the repository that stores them.
 */
export const webhookEvents = ['recording.done', 'recording.failed', 'recording.deleted'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];
