import logfmt from 'logfmt';
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'logfmt' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type { Logger };

/** Flattens pino's JSON record into logfmt's flat key=value pairs (errors become err=<message>). */
function toLogfmtLine(json: string): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  const flat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (key === 'err' && value && typeof value === 'object') {
      flat.err = (value as { message?: unknown }).message;
    } else if (value !== null && typeof value === 'object') {
      flat[key] = JSON.stringify(value);
    } else {
      flat[key] = value;
    }
  }
  return `${logfmt.stringify(flat)}\n`;
}

/** Logs go to stderr, like every Prometheus exporter's, so stdout stays free. */
export function createLogger(level: LogLevel, format: LogFormat, out: NodeJS.WritableStream = process.stderr): Logger {
  const destination: DestinationStream =
    format === 'json' ? { write: (line) => void out.write(line) } : { write: (line) => void out.write(toLogfmtLine(line)) };
  return pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
