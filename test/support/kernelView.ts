import { expect } from 'vitest';
import { select, type Series } from './exposition.js';
import type { SsSocket } from './ssOutput.js';

/** Docker's DNS listener and its accepted sockets are dockerd's, not the container's (docs/metrics.md says so). */
export function withoutDockerDns(sockets: readonly SsSocket[]): SsSocket[] {
  return sockets.filter((s) => s.localAddress !== '127.0.0.11');
}

function stateCounts(sockets: readonly SsSocket[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of sockets) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return counts;
}

/**
 * Asserts that what outpost reports for `containers` (together) equals the kernel's sockets:
 * the count per state, the listening address:port pairs, and the number of established
 * connections.
 */
export function expectMatchesKernel(series: readonly Series[], containers: readonly string[], kernel: readonly SsSocket[]): void {
  const mine = (name: string) => series.filter((s) => s.name === name && containers.includes(s.labels.container!));

  const reportedStates: Record<string, number> = {};
  for (const s of mine('container_tcp_sockets')) {
    if (s.value > 0) reportedStates[s.labels.state!] = (reportedStates[s.labels.state!] ?? 0) + s.value;
  }
  expect(reportedStates, `sockets per state of ${containers.join(', ')}`).toEqual(stateCounts(kernel));

  const reportedListening = mine('container_tcp_listening')
    .flatMap((s) => Array<string>(s.value).fill(`${s.labels.address}:${s.labels.port}`))
    .sort();
  const kernelListening = kernel
    .filter((s) => s.state === 'listen')
    .map((s) => `${s.localAddress}:${s.localPort}`)
    .sort();
  expect(reportedListening, `listeners of ${containers.join(', ')}`).toEqual(kernelListening);

  const reportedEstablished = mine('container_tcp_established').reduce((sum, s) => sum + s.value, 0);
  expect(reportedEstablished, `established connections of ${containers.join(', ')}`).toBe(
    kernel.filter((s) => s.state === 'established').length,
  );
}

/** address:port with IPv6 in brackets, as in a URL. */
export function hostPort(address: string | undefined, port: string | number | undefined): string {
  return address?.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The established series of one container, as "direction remote_address:port remote_container => count". */
export function establishedOf(series: readonly Series[], container: string): string[] {
  return select(series, 'container_tcp_established', { container })
    .map((s) => `${s.labels.direction} ${hostPort(s.labels.remote_address, s.labels.port)} ${s.labels.remote_container} => ${s.value}`)
    .sort();
}

export function listeningOf(series: readonly Series[], container: string): string[] {
  return select(series, 'container_tcp_listening', { container })
    .map((s) => `${hostPort(s.labels.address, s.labels.port)} => ${s.value}`)
    .sort();
}
