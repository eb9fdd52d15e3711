/** One counter of `nstat -asz NAME`'s output (absolute, the history file untouched). */
export function nstatCounter(stdout: string, name: string): number {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`nstat printed no ${name}: ${stdout}`);
  return Number(line.trim().split(/\s+/)[1]);
}
