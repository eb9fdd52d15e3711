import { describe, expect, it } from 'vitest';
import { InvalidFlagError } from '../../src/base/errors.js';
import { formatDuration, parseCommandLine, type Config } from '../../src/config.js';
import { servedPaths } from '../../src/http/server.js';

const run = (...args: string[]): Config => {
  const line = parseCommandLine(args, {});
  if (line.kind !== 'run') throw new Error(`not a run: ${line.kind}`);
  return line.config;
};
const refusal = (...args: string[]): InvalidFlagError => {
  try {
    run(...args);
  } catch (error) {
    if (error instanceof InvalidFlagError) return error;
    throw error;
  }
  throw new Error(`${args.join(' ')} was taken`);
};

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
  ])('takes %s as %i ms', (text, ms) => {
    expect(run(`--connections.retention=${text}`).connectionsRetentionMs).toBe(ms);
    expect(run(`--connections.retention=${formatDuration(ms)}`).connectionsRetentionMs).toBe(ms);
  });

  it.each(['10', '-5s', '1.5h', '1 hour', 's', '0s', ''])('refuses %j, naming the flag', (text) => {
    const error = refusal(`--connections.retention=${text}`);
    expect(error.flag).toBe('--connections.retention');
    expect(error.message).toContain('duration such as');
  });
});

describe('--web.telemetry-path', () => {
  const served = servedPaths();

  it('knows the paths the server serves from its router', () => {
    expect(served.exact).toEqual(
      expect.arrayContaining(['/', '/healthz', '/readyz', '/connections', '/policy', '/map', '/map/graph.json']),
    );
    expect(served.prefixes).toEqual(['/map']);
  });

  it.each([...servedPaths().exact, '/map/', '/map/anything'])('refuses %s, a path the server serves', (path) => {
    const error = refusal(`--web.telemetry-path=${path}`);
    expect(error.flag).toBe('--web.telemetry-path');
    expect(error.message).toContain('must not be a path the server serves');
  });

  it('takes a path of its own', () => {
    expect(run('--web.telemetry-path=/metrics2').telemetryPath).toBe('/metrics2');
    expect(run('--web.telemetry-path=/mapping').telemetryPath).toBe('/mapping');
  });
});
