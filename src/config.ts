import { isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';
import parseDuration from 'parse-duration';
import { z } from 'zod';
import { parseDockerHost, type DockerEndpoint } from './inventory/dockerClient.js';
import { InvalidFlagError } from './base/errors.js';
import type { LogFormat, LogLevel } from './base/log.js';
import { SOURCE_CHOICES, type SourceChoice } from './sockets/socketSourceChoice.js';
import { isServedPath, servedPaths } from './http/server.js';

/** The paths the server serves besides the telemetry path, read off its router. */
const SERVED = servedPaths();
const SERVED_LIST = [
  ...SERVED.exact.filter((e) => !SERVED.prefixes.some((p) => e.startsWith(`${p}/`))),
  ...SERVED.prefixes.map((p) => `${p}/…`),
].join(', ');

export interface ListenAddress {
  /** Undefined: every address. */
  host: string | undefined;
  port: number;
}

export interface Config {
  listenAddress: ListenAddress;
  telemetryPath: string;
  /** exporter-toolkit web configuration (TLS, basic auth); undefined: plain HTTP, open. */
  webConfigFile: string | undefined;
  maxRequests: number;
  scrapeTimeoutOffsetSeconds: number;
  dockerHost: string;
  dockerEndpoint: DockerEndpoint;
  dockerTimeoutMs: number;
  procfsPath: string;
  /** A process in the Docker host's network namespace (--host.pid). */
  hostPid: number;
  socketSource: SourceChoice;
  maxSeriesPerContainer: number;
  connectionsRetentionMs: number;
  /** The expected-links policy file (YAML); undefined: container labels only. */
  policyFile: string | undefined;
  /** Unexpected-connection events kept for GET /events. */
  eventsMax: number;
  /** A link's events in the log: the first at once, then one line with the count per this interval. */
  eventsLogIntervalMs: number;
  /** Most names kept per container from the DNS answers it received; 0: answers are not read. */
  dnsMaxNamesPerContainer: number;
  /** How long past its TTL an answer still names its address. */
  dnsGraceMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

const listenAddress = z.string().transform((value, ctx): ListenAddress => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: 'expected [host]:port, e.g. ":9057" or "127.0.0.1:9057", with a port from 1 to 65535' });
    return z.NEVER;
  }
  return { host: match[1] ?? (match[2] || undefined), port };
});

/**
 * A duration in Prometheus' form — whole numbers with units, largest first, such as "500ms", "10s",
 * "1m30s" or "2h" (ms, s, m, h, d, w) — in milliseconds: positive, or zero when `allowZero`.
 * parse-duration reads it; the form is checked first, as it would take "10" as 10 ms and "-5s".
 */
const DURATION_FORM = /^(?:\d+(?:ms|s|m|h|d|w))+$/;
function duration({ allowZero = false } = {}) {
  return z.string().transform((value, ctx) => {
    const ms = DURATION_FORM.test(value) ? parseDuration(value) : null;
    if (ms === null || (ms === 0 && !allowZero)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a ${allowZero ? '' : 'positive '}duration such as "500ms", "10s", "1m30s" or "2h"`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

/** Milliseconds in the flags' own form: the largest unit that divides them (900000 → "15m"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** A whole number from `min` to `max`. */
function wholeNumber(min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `expected a number from ${min} to ${max}`);
}

interface FlagDefinition {
  flag: string;
  description: string;
  defaultValue: (env: NodeJS.ProcessEnv) => string;
  schema: z.ZodType<unknown, string>;
  key: keyof Config;
}

export const FLAGS: readonly FlagDefinition[] = [
  {
    flag: 'web.listen-address',
    description: 'Address to listen on for the web interface and telemetry.',
    defaultValue: () => ':9057',
    schema: listenAddress,
    key: 'listenAddress',
  },
  {
    flag: 'web.telemetry-path',
    description: 'Path under which to expose metrics.',
    defaultValue: () => '/metrics',
    schema: z
      .string()
      .regex(/^\/[\w./-]*$/, 'expected a path starting with "/"')
      .refine((p) => !isServedPath(p, SERVED), `must not be a path the server serves: ${SERVED_LIST}`),
    key: 'telemetryPath',
  },
  {
    flag: 'web.config.file',
    description:
      'Path to a web configuration file (the Prometheus exporter-toolkit format) for TLS and basic auth; re-read when it changes. Empty: plain HTTP.',
    defaultValue: () => '',
    schema: z.string().transform((path) => path || undefined),
    key: 'webConfigFile',
  },
  {
    flag: 'web.max-requests',
    description: 'Most HTTP requests served at once; more get 503. 0 for no bound.',
    defaultValue: () => '100',
    schema: wholeNumber(0, Number.MAX_SAFE_INTEGER),
    key: 'maxRequests',
  },
  {
    flag: 'web.scrape-timeout-offset',
    description: "Taken off Prometheus' X-Prometheus-Scrape-Timeout-Seconds: outpost answers with what is ready by then.",
    defaultValue: () => '500ms',
    schema: duration({ allowZero: true }).transform((ms) => ms / 1000),
    key: 'scrapeTimeoutOffsetSeconds',
  },
  {
    flag: 'docker.host',
    description: 'Docker API address: unix:///path/to/docker.sock or tcp://host:port. Default: $DOCKER_HOST, else the local socket.',
    defaultValue: (env) => env.DOCKER_HOST || 'unix:///var/run/docker.sock',
    schema: z.string().refine((v) => parseDockerHost(v) !== undefined, 'expected unix:///absolute/path or tcp://host:port'),
    key: 'dockerHost',
  },
  {
    flag: 'docker.timeout',
    description: 'Timeout of a Docker API call.',
    defaultValue: () => '10s',
    schema: duration(),
    key: 'dockerTimeoutMs',
  },
  {
    flag: 'procfs.path',
    description: "Mount point of the host's /proc (e.g. /host/proc with -v /proc:/host/proc:ro).",
    defaultValue: () => '/proc',
    schema: z.string().refine(isAbsolute, 'expected an absolute path'),
    key: 'procfsPath',
  },
  {
    flag: 'host.pid',
    description:
      "A process in the Docker host's network namespace, as seen under --procfs.path: where outpost reads the host's addresses and finds host-network containers. Set it (e.g. to the Docker daemon's pid) when the engine runs in a network namespace of its own.",
    defaultValue: () => '1',
    schema: wholeNumber(1, 4_194_304),
    key: 'hostPid',
  },
  {
    flag: 'collector.source',
    description:
      'How sockets are read: auto (ebpf when its programs load, else netlink when the addon is built and outpost may enter namespaces, else procfs), ebpf (every namespace in one walk, and every connection as it happens), netlink, procfs, or exec (docker exec, for an engine whose /proc is out of reach).',
    defaultValue: () => 'auto',
    schema: z.enum(SOURCE_CHOICES),
    key: 'socketSource',
  },
  {
    flag: 'established.max-series-per-container',
    description:
      'Most container_tcp_established series per container; the smallest groups beyond it fold into remote_address="~other" (counted in outpost_established_folded_groups).',
    defaultValue: () => '100',
    schema: wholeNumber(1, 100_000),
    key: 'maxSeriesPerContainer',
  },
  {
    flag: 'connections.retention',
    description: 'How long a link keeps its container_tcp_connections_total series without a new connection; then the series is dropped.',
    defaultValue: () => '15m',
    schema: duration(),
    key: 'connectionsRetentionMs',
  },
  {
    flag: 'policy.file',
    description:
      "Path to an expected-links policy file (YAML, docs/policy.md), merged with the containers' outpost.allow.* labels; re-read when it changes. Empty: labels only.",
    defaultValue: () => '',
    schema: z.string().transform((path) => path || undefined),
    key: 'policyFile',
  },
  {
    flag: 'events.max',
    description: 'Most unexpected-connection events kept for GET /events; the oldest go first.',
    defaultValue: () => '10000',
    schema: wholeNumber(1, 1_000_000),
    key: 'eventsMax',
  },
  {
    flag: 'events.log-interval',
    description:
      "How often a link's unexpected connections are logged: its first at once, then one line per interval with the count of those after it.",
    defaultValue: () => '1m',
    schema: duration(),
    key: 'eventsLogIntervalMs',
  },
  {
    flag: 'dns.max-names-per-container',
    description:
      'Most names kept per container from the DNS answers it receives (read by a filtered packet socket in its namespace: needs CAP_NET_RAW and CAP_SYS_ADMIN), which name its peers off the host (container_peer_name_info); the answer expiring first makes room. 0: answers are not read.',
    defaultValue: () => '100',
    schema: wholeNumber(0, 100_000),
    key: 'dnsMaxNamesPerContainer',
  },
  {
    flag: 'dns.grace',
    description:
      'How long past its TTL a DNS answer still names its address (and allows it, for a rule by name); it is kept longer while the container is connected to the address.',
    defaultValue: () => '1m',
    schema: duration({ allowZero: true }),
    key: 'dnsGraceMs',
  },
  {
    flag: 'log.level',
    description: 'Only log messages with the given severity or above: debug, info, warn, error.',
    defaultValue: () => 'info',
    schema: z.enum(['debug', 'info', 'warn', 'error']),
    key: 'logLevel',
  },
  {
    flag: 'log.format',
    description: 'Output format of log messages: logfmt, json.',
    defaultValue: () => 'logfmt',
    schema: z.enum(['logfmt', 'json']),
    key: 'logFormat',
  },
];

/** OUTPOST_ + the flag in upper case with . and - as _: web.listen-address → OUTPOST_WEB_LISTEN_ADDRESS. */
export function envVarOf(flag: string): string {
  return `OUTPOST_${flag.toUpperCase().replace(/[.-]/g, '_')}`;
}

export type CommandLine = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

/**
 * Reads flags, then OUTPOST_* variables, then defaults. Throws InvalidFlagError naming the
 * flag (and the variable, when the value came from one).
 */
export function parseCommandLine(args: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        ...Object.fromEntries(FLAGS.map((f) => [f.flag, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-[^']*)'/.exec(message)?.[1] ?? 'command line';
    throw new InvalidFlagError(flag, `${message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const config: Record<string, unknown> = {};
  for (const def of FLAGS) {
    const envVar = envVarOf(def.flag);
    const fromFlag = values[def.flag] as string | undefined;
    const fromEnv = fromFlag === undefined ? env[envVar] : undefined;
    const raw = fromFlag ?? fromEnv ?? def.defaultValue(env);
    const parsed = def.schema.safeParse(raw);
    if (!parsed.success) {
      const origin = fromEnv !== undefined ? ` (from ${envVar})` : '';
      const reason = parsed.error.issues[0]?.message ?? 'invalid';
      throw new InvalidFlagError(`--${def.flag}`, `invalid value "${raw}" for --${def.flag}${origin}: ${reason}`);
    }
    config[def.key] = parsed.data;
  }
  const dockerEndpoint = parseDockerHost(config.dockerHost as string, Boolean(env.DOCKER_TLS_VERIFY));
  return { kind: 'run', config: { ...config, dockerEndpoint } as Config };
}

export function helpText(): string {
  const lines = [
    'usage: outpost [flags]',
    '',
    'Prometheus exporter for the TCP sockets of the containers on a Docker host.',
    '',
    'Flags (each also settable by the environment variable shown):',
  ];
  for (const def of FLAGS) {
    lines.push(`  --${def.flag}=<value>   ${envVarOf(def.flag)}`);
    lines.push(`      ${def.description} Default: ${JSON.stringify(def.defaultValue({}))}`);
  }
  lines.push('  -h, --help        Show this help.', '  --version         Show the version.');
  return `${lines.join('\n')}\n`;
}
