// The servers of ebpfSource.test.ts, run inside the test's server namespace. Each port ends a
// connection its own way; prints "ready" once all listen on the address given.
import { createServer } from 'node:net';

const [, , v4, v6] = process.argv;
const ways = {
  8080: (s) => s.pipe(s), // keeps every client (echo)
  9401: (s) => s.end(), // closes first: the client's end sees the peer close
  9402: (s) => s.resetAndDestroy(), // resets (SO_LINGER 0)
  9403: (s) => s.on('end', () => s.end()).resume(), // closes after the client did: TIME_WAIT at the client
};
let listening = 0;
const all = Object.keys(ways).length * 2;
for (const [port, way] of Object.entries(ways)) {
  for (const host of [v4, v6]) {
    createServer((s) => {
      s.on('error', () => undefined);
      way(s);
    }).listen({ port: Number(port), host, ipv6Only: host.includes(':') }, () => {
      if (++listening === all) console.log('ready');
    });
  }
}
