import net from 'node:net';

/** The real database through a proxy that can be cut (connections dropped, refused) and restored. */
export async function cuttableDatabase(url: string) {
  const target = new URL(url);
  const sockets = new Set<net.Socket>();
  let proxy = net.createServer();
  const listen = (port = 0) =>
    new Promise<number>((resolve) => {
      proxy = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 5432), target.hostname);
        sockets.add(client).add(upstream);
        const forget = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', forget).on('close', forget);
        upstream.on('error', forget).on('close', forget);
        client.pipe(upstream).pipe(client);
      });
      proxy.listen(port, '127.0.0.1', () => resolve((proxy.address() as net.AddressInfo).port));
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      proxy.close(() => resolve());
    });
  const port = await listen();
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String(port);
  return { url: via.toString(), cut, restore: () => listen(port) };
}
