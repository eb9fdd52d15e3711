/**
 * The recommended least-privilege `docker run` flags (README "Run in Docker"), proved by
 * test/integration/image.test.ts and mirrored by the outpost service of docker-compose.yml.
 */
export const LEAST_PRIVILEGE = [
  '--init',
  '--read-only',
  '--cap-drop', 'ALL',
  '--cap-add', 'SYS_PTRACE',
  '--security-opt', 'no-new-privileges',
  '-v', '/proc:/host/proc:ro',
] as const;
