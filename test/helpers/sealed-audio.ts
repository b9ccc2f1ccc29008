import { expect } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import type { TestUser } from './fixtures.js';
import { bearer } from './fixtures.js';
import type { TestApp } from './test-app.js';

// Apart from live-instances.ts, which benches import too: this one needs vitest's expect.
/** The recording's sealed audio, read back through the API, is `pcm` exactly: every sample, once. */
export async function expectSealedAudio(
  local: Pick<TestApp, 'app'>,
  user: TestUser,
  ip: string,
  id: string,
  pcm: Int16Array,
): Promise<void> {
  const res = await local.app.inject({
    method: 'GET',
    url: `/api/v1/recordings/${id}/audio`,
    headers: bearer(user.accessToken),
    remoteAddress: ip,
  });
  expect(res.statusCode).toBe(200);
  const sealed = readWav(res.rawPayload).channels[0]!;
  expect(sealed.length).toBe(pcm.length);
  expect(Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength)).toEqual(
    Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength),
  );
}
