import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureVersion } from 'node:tls';
import { z } from 'zod';
import { errorMessage, InvalidWebConfigError } from '../base/errors.js';
import { loadYamlFile, YamlFileProblem } from '../base/yamlFile.js';

/**
 * The web configuration file of Prometheus' exporter-toolkit (the `--web.config.file` of
 * node_exporter), the subset that maps onto Node's TLS: server certificate, TLS versions,
 * client certificates, and bcrypt-hashed basic auth users.
 */

/** exporter-toolkit's names for Go's tls.ClientAuthType. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const satisfies Record<
  string,
  SecureVersion
>;
type TlsVersionName = keyof typeof TLS_VERSIONS;
const tlsVersion = z.enum(Object.keys(TLS_VERSIONS) as [TlsVersionName, ...TlsVersionName[]]);

// A bcrypt hash as htpasswd -B or Go's bcrypt writes it: $2a$, $2b$ or $2y$, cost, 53 characters.
const bcryptHash = z
  .string()
  .regex(/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/, 'expected a bcrypt hash ("$2y$10$…", e.g. from htpasswd -nBC 10 "" | tr -d \':\\n\')');

const fileSchema = z
  .strictObject({
    tls_server_config: z
      .strictObject({
        cert_file: z.string().min(1),
        key_file: z.string().min(1),
        client_auth_type: z.enum(CLIENT_AUTH_TYPES).default('NoClientCert'),
        client_ca_file: z.string().min(1).optional(),
        min_version: tlsVersion.default('TLS12'),
        max_version: tlsVersion.default('TLS13'),
      })
      .refine((tls) => !(tls.client_ca_file && tls.client_auth_type === 'NoClientCert'), {
        message:
          'client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven)',
      })
      .refine((tls) => tls.client_ca_file || !tls.client_auth_type.includes('Verify'), {
        message: 'client_auth_type verifies client certificates but no client_ca_file is set',
      })
      .refine((tls) => Object.keys(TLS_VERSIONS).indexOf(tls.min_version) <= Object.keys(TLS_VERSIONS).indexOf(tls.max_version), {
        message: 'min_version is above max_version',
      })
      .optional(),
    basic_auth_users: z
      .record(
        z
          .string()
          .min(1)
          .regex(/^[^:]*$/, 'a user name cannot contain ":"'),
        bcryptHash,
      )
      .optional(),
  })
  .nullish();

export interface TlsSettings {
  cert: Buffer;
  key: Buffer;
  /** Present when client certificates are verified. */
  ca: Buffer | undefined;
  clientAuthType: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** Absolute paths of the files above, watched for changes. */
  files: readonly string[];
}

export interface WebConfig {
  /** Undefined: plain HTTP. */
  tls: TlsSettings | undefined;
  /** User → bcrypt hash; empty: no authentication. */
  basicAuthUsers: ReadonlyMap<string, string>;
}

export const PLAIN_HTTP: WebConfig = { tls: undefined, basicAuthUsers: new Map() };

/**
 * Reads and checks the file and everything it names (certificate, key, CA), so that a bad
 * file is refused at start and a bad edit never reaches a running server. File names inside
 * are relative to the file's own directory, as in exporter-toolkit.
 */
export async function loadWebConfig(path: string): Promise<WebConfig> {
  const fail = (reason: string, cause?: unknown, line = 0): never => {
    throw new InvalidWebConfigError(path, line, reason, cause);
  };
  let settings: z.output<typeof fileSchema>;
  let lineOf: (path: readonly (string | number)[]) => number;
  try {
    ({ data: settings, lineOf } = await loadYamlFile(path, fileSchema));
  } catch (error) {
    if (error instanceof YamlFileProblem) return fail(error.problem, error.cause, error.line);
    throw error;
  }
  const files: string[] = [];
  const readNamed = async (key: string, name: string): Promise<Buffer> => {
    const file = resolve(dirname(path), name);
    files.push(file);
    try {
      return await readFile(file);
    } catch (error) {
      return fail(`tls_server_config.${key}: cannot read "${name}": ${errorMessage(error)}`, error, lineOf(['tls_server_config', key]));
    }
  };
  let tls: TlsSettings | undefined;
  const t = settings?.tls_server_config;
  if (t) {
    tls = {
      cert: await readNamed('cert_file', t.cert_file),
      key: await readNamed('key_file', t.key_file),
      ca: t.client_ca_file ? await readNamed('client_ca_file', t.client_ca_file) : undefined,
      clientAuthType: t.client_auth_type,
      minVersion: TLS_VERSIONS[t.min_version],
      maxVersion: TLS_VERSIONS[t.max_version],
      files,
    };
    try {
      createSecureContext(secureContextOptions(tls));
    } catch (error) {
      return fail(`tls_server_config: the certificate, key or client CA do not load: ${(error as Error).message}`, error);
    }
  }
  return { tls, basicAuthUsers: new Map(Object.entries(settings?.basic_auth_users ?? {})) };
}

/** What Node's TLS takes from the settings; the same for the first context and a reload. */
export function secureContextOptions(tls: TlsSettings) {
  return { cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: tls.minVersion, maxVersion: tls.maxVersion };
}
