// A TCP load balancer for browser tests: each new connection goes to the first
// backend (in the order given) that accepts it, as a health-checking balancer in front
// of signaling nodes would send it. Loopback only.
import net from 'node:net';

/** Listens on a free loopback port; resolves with { url, close }. */
export function startBalancer(backends) {
  const targets = backends.map((b) => new URL(b));
  const open = new Set();
  const server = net.createServer((client) => {
    // A browser may reset the connection before any backend accepted it.
    client.on('error', () => {});
    open.add(client);
    client.on('close', () => open.delete(client));
    client.pause();
    const attempt = (i) => {
      if (i >= targets.length) return client.destroy();
      const upstream = net.connect(Number(targets[i].port), targets[i].hostname);
      upstream.once('error', () => attempt(i + 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        open.add(upstream);
        upstream.on('close', () => open.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  return new Promise((ok) => {
    server.listen(0, '127.0.0.1', () => {
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => {
          for (const s of open) s.destroy();
          return new Promise((done) => server.close(done));
        },
      });
    });
  });
}
