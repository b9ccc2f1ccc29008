/** The signed-in person's own account calls: password, second factor, devices (security page). */
import { api } from './api';
import { unwrap, type Answer } from './api-client';

export async function changePassword(currentPassword: string, newPassword: string): Promise<void> {
  await unwrap(api.POST('/api/v1/auth/password', { body: { currentPassword, newPassword } }));
}

export const startTotp = (): Promise<Answer<'/api/v1/auth/mfa/totp', 'post'>> =>
  unwrap(api.POST('/api/v1/auth/mfa/totp'));

/** Turns TOTP on; the answer's recovery codes are shown once and never again. */
export const confirmTotp = (code: string): Promise<Answer<'/api/v1/auth/mfa/totp/confirm', 'post'>> =>
  unwrap(api.POST('/api/v1/auth/mfa/totp/confirm', { body: { code } }));

export async function disableTotp(code: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/auth/mfa/totp', { body: { code } }));
}

export type Device = Answer<'/api/v1/auth/devices', 'get'>[number];

export const listDevices = (): Promise<Device[]> => unwrap(api.GET('/api/v1/auth/devices'));

export async function revokeDevice(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/auth/devices/{id}', { params: { path: { id } } }));
}

/** Revokes every session of the user, this one included (the server clears the cookie too). */
export async function revokeAllDevices(): Promise<number> {
  const { revoked } = await unwrap(api.POST('/api/v1/auth/devices/revoke-all'));
  return revoked;
}
