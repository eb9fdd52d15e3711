/**
 * The recommended least-privilege `docker run` flags (README "Run in Docker"), proved by
 * test/integration/image.test.ts and mirrored by the outpost service of docker-compose.yml:
 * SYS_PTRACE to read other processes' /proc entries, BPF and PERFMON to load and run the ebpf
 * source, the host's PID namespace for its seeding walk (the sockets open before outpost started).
 */
export const LEAST_PRIVILEGE = [
  '--init',
  '--read-only',
  '--cap-drop', 'ALL',
  '--cap-add', 'SYS_PTRACE',
  '--cap-add', 'BPF',
  '--cap-add', 'PERFMON',
  '--pid', 'host',
  '--security-opt', 'no-new-privileges',
  '-v', '/proc:/host/proc:ro',
] as const;
