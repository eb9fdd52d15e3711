/**
 * Reads `ss -tanH` output — the kernel's own view, through iproute2 — into comparable records.
 * Used as the oracle the exporter's numbers are checked against.
 */
export interface SsSocket {
  state: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** With ss -p: pids of the processes holding the socket. */
  pids: number[];
  /** With ss -e: the socket's inode (0: no file holds it) and cookie (sk:hex). */
  inode?: number;
  cookie?: number;
}

const SS_STATES: Record<string, string> = {
  ESTAB: 'established',
  'SYN-SENT': 'syn_sent',
  'SYN-RECV': 'syn_recv',
  'FIN-WAIT-1': 'fin_wait1',
  'FIN-WAIT-2': 'fin_wait2',
  'TIME-WAIT': 'time_wait',
  UNCONN: 'close',
  'CLOSE-WAIT': 'close_wait',
  'LAST-ACK': 'last_ack',
  LISTEN: 'listen',
  CLOSING: 'closing',
};

function endpoint(text: string): [string, number] {
  const colon = text.lastIndexOf(':');
  let address = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice('::ffff:'.length);
  // ss writes a dual-stack wildcard as "*" and drops the interface suffix we do not use.
  if (address === '*') address = '::';
  address = address.replace(/%.*$/, '');
  return [address, port === '*' ? 0 : Number(port)];
}

export function parseSsOutput(text: string): SsSocket[] {
  const sockets: SsSocket[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const state = SS_STATES[fields[0]!];
    if (!state) throw new Error(`unknown ss state in: ${line}`);
    const [localAddress, localPort] = endpoint(fields[3]!);
    const [remoteAddress, remotePort] = endpoint(fields[4]!);
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    const inode = /\bino:(\d+)/.exec(line)?.[1];
    const cookie = /\bsk:([0-9a-f]+)/.exec(line)?.[1];
    sockets.push({
      state,
      localAddress,
      localPort,
      remoteAddress,
      remotePort,
      pids,
      ...(inode && { inode: Number(inode) }),
      ...(cookie && { cookie: parseInt(cookie, 16) }),
    });
  }
  return sockets;
}

/** One comparable string per socket, sorted: equal lists mean equal socket tables. */
export function socketKeys(sockets: readonly Omit<SsSocket, 'pids'>[]): string[] {
  return sockets.map((s) => `${s.state} ${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`).sort();
}

/** One connection's tcp_info as `ss -tinHO` prints it (one line a socket): the figures' oracle. */
export interface SsInfo {
  /** "local:port remote:port", addresses as parseSsOutput gives them. */
  endpoints: string;
  bytesAcked: number;
  bytesReceived: number;
  /** The total of `retrans:current/total`; 0 when ss prints none. */
  retransmits: number;
  segmentsSent: number;
  /** `rtt:srtt/rttvar`'s srtt, in microseconds. */
  rttUs: number;
}

export function parseSsInfo(text: string): SsInfo[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      const [local, remote] = [endpoint(fields[3]!), endpoint(fields[4]!)];
      const number = (name: string) => Number(new RegExp(`\\b${name}:(\\d+)`).exec(line)?.[1] ?? 0);
      return {
        endpoints: `${local[0]}:${local[1]} ${remote[0]}:${remote[1]}`,
        bytesAcked: number('bytes_acked'),
        bytesReceived: number('bytes_received'),
        retransmits: Number(/\bretrans:\d+\/(\d+)/.exec(line)?.[1] ?? 0),
        segmentsSent: number('segs_out'),
        rttUs: Math.round(Number(/\brtt:([\d.]+)\//.exec(line)?.[1] ?? 0) * 1000),
      };
    });
}
