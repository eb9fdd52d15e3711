import { describe, expect, it } from 'vitest';
import { ebpfCapabilities } from '../../../src/sockets/ebpfSource.js';
import { EVERY_EBPF_CAPABILITY } from '../../support/ebpfCapabilities.js';

const programs = (seeded: boolean) => [
  { name: 'seed_sockets', loaded: seeded },
  { name: 'list_sockets', loaded: true },
  { name: 'on_state_change', loaded: true },
];

describe('what the ebpf source can see, by the programs that run', () => {
  it('everything, with the three', () => {
    expect(ebpfCapabilities(programs(true)).sort()).toEqual(EVERY_EBPF_CAPABILITY);
  });

  it('not the sockets of before the start, without the seeding walk', () => {
    const seen = ebpfCapabilities(programs(false));
    expect(seen).not.toContain('sockets_opened_before_start');
    expect(seen).toHaveLength(EVERY_EBPF_CAPABILITY.length - 1);
  });
});
