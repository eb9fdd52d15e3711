/**
 * The recommended least-privilege `docker run` flags (docs/deploy-and-security.md "Run in Docker"), proved by
 * test/integration/image.test.ts and mirrored by the outpost service of docker-compose.yml:
 * SYS_PTRACE to read other processes' /proc entries, BPF and PERFMON to load and run the ebpf
 * source, the host's PID namespace for its seeding walk (the sockets open before outpost started).
 */
export const LEAST_PRIVILEGE = [
  '--init',
  '--read-only',
  '--cap-drop',
  'ALL',
  '--cap-add',
  'SYS_PTRACE',
  '--cap-add',
  'BPF',
  '--cap-add',
  'PERFMON',
  '--pid',
  'host',
  '--security-opt',
  'no-new-privileges',
  '-v',
  '/proc:/host/proc:ro',
] as const;

/** `flags` without the consecutive pairs given (e.g. ['--cap-add', 'SYS_PTRACE']); a pair not there is an error. */
export function withoutPairs(flags: readonly string[], ...pairs: [string, string][]): string[] {
  let left = [...flags];
  for (const [flag, value] of pairs) {
    const at = left.findIndex((f, i) => f === flag && left[i + 1] === value);
    if (at < 0) throw new Error(`no ${flag} ${value} in ${left.join(' ')}`);
    left = [...left.slice(0, at), ...left.slice(at + 2)];
  }
  return left;
}
