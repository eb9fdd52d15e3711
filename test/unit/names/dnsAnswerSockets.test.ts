import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/base/log.js';
import { CAP_NET_RAW, DnsAnswerSockets, missingRightOf } from '../../../src/names/dnsAnswerSockets.js';
import type { DnsAnswersAddon } from '../../../src/names/dnsAnswersAddon.js';
import type { NetNamespace } from '../../../src/namespaces/netNamespaces.js';
import { client, server } from '../../support/connectionFixtures.js';

/** What native/dns_answers.c threw when outpost lacked each right (captured under capsh --drop). */
const thrown = (code: string, syscall: string, message: string) => Object.assign(new Error(message), { code, syscall, errno: 1 });
const NO_SYS_ADMIN = thrown('EPERM', 'setns', 'setns /proc/9969/ns/net: Operation not permitted');
const NO_NET_RAW = thrown('EPERM', 'socket', 'socket /proc/9969/ns/net: Operation not permitted');
const GONE = thrown('ENOENT', 'open', 'open /proc/9969/ns/net: No such file or directory');

const ALL_CAPABILITIES = (1n << 41n) - 1n;

function addonOpening(outcome: (path: string) => number | Error) {
  const calls = { open: [] as string[], closed: [] as number[], drained: [] as number[] };
  const addon: DnsAnswersAddon = {
    recordSize: 16,
    open(path) {
      calls.open.push(path);
      const got = outcome(path);
      if (got instanceof Error) throw got;
      return got;
    },
    drain(fd) {
      calls.drained.push(fd);
      return { packets: Buffer.alloc(0), dropped: 2 };
    },
    close(fd) {
      calls.closed.push(fd);
    },
  };
  return { addon, calls };
}

function logged() {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger('info', 'logfmt', out), lines };
}

const ns = (id: string, containers = [client], host = false): NetNamespace => ({ id, host, containers });

describe('missingRightOf', () => {
  it('names the capability each step needs, and whether this process lacks it', () => {
    expect(missingRightOf(NO_SYS_ADMIN, 0n)).toBe("entering a container's network namespace needs CAP_SYS_ADMIN: this process lacks it");
    expect(missingRightOf(NO_NET_RAW, ALL_CAPABILITIES & ~(1n << BigInt(CAP_NET_RAW)))).toBe(
      'a packet socket needs CAP_NET_RAW: this process lacks it',
    );
    // Held, and still refused (a seccomp profile, an LSM): the need is said, not a lack.
    expect(missingRightOf(NO_NET_RAW, ALL_CAPABILITIES)).toBe('a packet socket needs CAP_NET_RAW');
    expect(missingRightOf(GONE, 0n)).toBeUndefined();
  });
});

describe('DnsAnswerSockets', () => {
  it('opens a socket per container namespace at its first read, none for the host, and closes it once the namespace is gone', () => {
    let next = 10;
    const { addon, calls } = addonOpening(() => next++);
    const { log } = logged();
    const sockets = new DnsAnswerSockets({ addon, procfsPath: '/host/proc', log, effectiveCapabilities: () => ALL_CAPABILITIES });
    sockets.read([ns('net:[1]', [client]), ns('net:[2]', [server]), ns('net:[host]', [server], true)]);
    sockets.read([ns('net:[1]', [client]), ns('net:[2]', [server])]);
    expect(calls.open).toEqual([`/host/proc/${client.pid}/ns/net`, `/host/proc/${server.pid}/ns/net`]);
    expect(calls.drained).toEqual([10, 11, 10, 11]);
    expect(sockets.dropped).toBe(8);
    sockets.read([ns('net:[2]', [server])]);
    expect(calls.closed).toEqual([10]);
    sockets.close();
    expect(calls.closed).toEqual([10, 11]);
  });

  it('stops at the first lack of rights, says it once with its true cause, and tries no other namespace', () => {
    const { addon, calls } = addonOpening(() => NO_SYS_ADMIN);
    const { log, lines } = logged();
    const sockets = new DnsAnswerSockets({ addon, procfsPath: '/proc', log, effectiveCapabilities: () => 0n });
    sockets.read([ns('net:[1]'), ns('net:[2]')]);
    sockets.read([ns('net:[1]'), ns('net:[2]')]);
    expect(calls.open).toHaveLength(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      "peers are not named by the DNS answers containers receive: entering a container's network namespace needs CAP_SYS_ADMIN: this process lacks it",
    );
    expect(lines[0]).toContain('err="setns /proc/9969/ns/net: Operation not permitted"');
    expect(sockets.off).toMatch(/needs CAP_SYS_ADMIN/);
  });

  it('skips a namespace whose process is gone, quietly, and tries it again while it is listed', () => {
    const { addon, calls } = addonOpening(() => GONE);
    const { log, lines } = logged();
    const sockets = new DnsAnswerSockets({ addon, procfsPath: '/proc', log, effectiveCapabilities: () => ALL_CAPABILITIES });
    expect(sockets.read([ns('net:[1]')])).toEqual([]);
    sockets.read([ns('net:[1]')]);
    expect(calls.open).toHaveLength(2);
    expect(lines).toEqual([]);
    expect(sockets.off).toBeUndefined();
  });
});
