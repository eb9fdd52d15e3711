/**
 * The hand-written code outpost keeps, against the well-kept library that would replace it, on
 * the same inputs in the same run, rounds interleaved: what the comments at that code quote.
 *
 *   npm run bench:hot-path -- [--rounds 15] [--out bench/results/hot-path.json]
 *
 * - formatIPv6 (src/net/ipAddress.ts), run for every IPv6 end of every socket of every scrape,
 *   against ipaddr.js (fromByteArray, then the IPv4 of a mapped address or RFC 5952 text);
 * - a policy selector's glob (src/policy/selectors.ts), run for every link of every scrape:
 *   picomatch, which outpost uses, against the regular expression it replaced.
 * Needs nothing but Node.js: no root, no Docker.
 */
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import ipaddr from 'ipaddr.js';
import picomatch from 'picomatch';
import { formatIPv6 } from '../src/net/ipAddress.js';
import { summarize, wholeNumberFlag } from './measure.js';

const { values } = parseArgs({ options: { rounds: { type: 'string' }, out: { type: 'string' } } });
const rounds = wholeNumberFlag('bench:hot-path', 'rounds', values.rounds, 15, 1);

/** Addresses as /proc and netlink give them: a third IPv4-mapped, a third with a zero run, a third full. */
function addresses(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(16);
    if (i % 3 === 0) {
      b[10] = 0xff;
      b[11] = 0xff;
      for (let j = 12; j < 16; j++) b[j] = next();
    } else {
      b[0] = 0xfd;
      for (let j = 1; j < 16; j++) b[j] = i % 3 === 1 && j >= 4 && j < 12 ? 0 : next();
    }
    out.push(b);
  }
  return out;
}

function viaIpaddr(bytes: Uint8Array): string {
  const address = ipaddr.fromByteArray([...bytes]) as ipaddr.IPv6;
  return address.isIPv4MappedAddress() ? address.toIPv4Address().toString() : address.toRFC5952String();
}

/** The hand-written glob outpost had before picomatch: `*` any run, `?` one, the rest literal. */
function regexGlob(glob: string): (s: string) => boolean {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const re = new RegExp(`^${body}$`, 's');
  return (s) => re.test(s);
}

const time = (work: () => number): { ms: number; result: number } => {
  const start = performance.now();
  const result = work();
  return { ms: performance.now() - start, result };
};

const inputs = addresses(60_000);
// The two must agree on every input, or the comparison says nothing.
for (const b of inputs) if (formatIPv6(b) !== viaIpaddr(b)) throw new Error(`they differ on ${formatIPv6(b)} / ${viaIpaddr(b)}`);

const names = Array.from({ length: 20_000 }, (_, i) => (i % 2 ? `registry.local:5000/shop/web-${i}:1.${i % 7}` : `shop-api-${i}`));
const globs = ['registry.local:5000/shop/*', 'shop-api-?', '*'];
const picomatchers = globs.map((g) => picomatch(g, { bash: true, dot: true }));
const regexes = globs.map(regexGlob);
const matchAll = (matchers: ((s: string) => boolean)[]) => () => {
  let n = 0;
  for (const name of names) for (const m of matchers) if (m(name)) n++;
  return n;
};

const samples = { formatIPv6: [] as number[], ipaddr: [] as number[], regex: [] as number[], picomatch: [] as number[] };
for (let round = 0; round < rounds + 2; round++) {
  const format = time(() => inputs.reduce((n, b) => n + formatIPv6(b).length, 0));
  const lib = time(() => inputs.reduce((n, b) => n + viaIpaddr(b).length, 0));
  const re = time(matchAll(regexes));
  const pm = time(matchAll(picomatchers));
  if (re.result !== pm.result) throw new Error(`the globs disagree: ${re.result} against ${pm.result}`);
  if (round < 2) continue; // warm-up: the JIT
  samples.formatIPv6.push(format.ms);
  samples.ipaddr.push(lib.ms);
  samples.regex.push(re.ms);
  samples.picomatch.push(pm.ms);
}

const median = (xs: number[]) => summarize(xs).median;
const perItem = (ms: number, n: number) => `${((ms * 1e6) / n).toFixed(0)} ns`;
const result = {
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), node: process.version },
  rounds,
  ipv6: {
    addresses: inputs.length,
    formatIPv6: summarize(samples.formatIPv6),
    ipaddr: summarize(samples.ipaddr),
    ratio: median(samples.ipaddr) / median(samples.formatIPv6),
  },
  globs: {
    matches: names.length * globs.length,
    regex: summarize(samples.regex),
    picomatch: summarize(samples.picomatch),
    ratio: median(samples.picomatch) / median(samples.regex),
  },
};
console.log(
  `IPv6 text, ${inputs.length} addresses: formatIPv6 ${perItem(median(samples.formatIPv6), inputs.length)} an address, ` +
    `ipaddr.js ${perItem(median(samples.ipaddr), inputs.length)} (×${result.ipv6.ratio.toFixed(1)})`,
);
console.log(
  `globs, ${result.globs.matches} matches: regex ${perItem(median(samples.regex), result.globs.matches)} a match, ` +
    `picomatch ${perItem(median(samples.picomatch), result.globs.matches)} (×${result.globs.ratio.toFixed(2)})`,
);
if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
