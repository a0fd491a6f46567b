import * as net from 'node:net';

/**
 * A loopback port nobody listens on right now. The bridge's Host check needs its port before it
 * listens, so benchmarks and tests pick one first.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
