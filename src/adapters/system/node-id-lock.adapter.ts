import { createServer, type Server } from 'node:net';

/**
 * Holds a node id (src/config/node-id.ts) for as long as this process lives: a listening socket
 * in Linux's abstract namespace, `\0sotto-node:<prefix><id>`. Only one process of a network
 * namespace can hold such a name, and the kernel lets go of it when the process dies, however it
 * dies (SIGKILL included), so a restarted node gets its id back at once while a second live
 * process on the host that wants the same id is refused. No file: nothing is left behind, and a
 * shared data directory does not matter. Elsewhere than Linux it holds nothing (the listening
 * port alone keeps two processes of one host apart there).
 */
export class NodeIdInUseError extends Error {
  override name = 'NodeIdInUseError';
  constructor(readonly nodeId: string) {
    super(`node id ${nodeId} is in use by another process on this host`);
  }
}

export interface NodeIdLock {
  release(): Promise<void>;
}

export async function holdNodeId(
  nodeId: string,
  prefix: string,
  platform: NodeJS.Platform = process.platform,
): Promise<NodeIdLock> {
  if (platform !== 'linux') return { release: async () => undefined };
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new NodeIdInUseError(nodeId) : err),
    );
    server.listen({ path: `\0sotto-node:${prefix}${nodeId}` }, () => resolve());
  });
  // Held, not waited on: it must never keep the process alive.
  server.unref();
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}
