import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { TLSSocket, type SecureVersion } from 'node:tls';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/docker.js';
import { startTestExporter, type TestExporter } from '../support/exporter.js';
import { freePort } from '../support/net.js';
import { createTestPki, type TestPki } from '../support/tls.js';

// Real TLS clients (Node's https and curl) against the exporter started with --web.config.file.

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
let pki: TestPki;
const HASH = bcrypt.hashSync('s3cret', 6);

interface Client {
  user?: string;
  password?: string;
  /** Client certificate and key, file names in the PKI. */
  cert?: [string, string];
  trust?: string;
  maxVersion?: SecureVersion;
}

interface Answer {
  status: number;
  body: string;
  serverCertFingerprint: string;
}

function get(port: number, path: string, client: Client = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (client.user !== undefined)
    headers.Authorization = `Basic ${Buffer.from(`${client.user}:${client.password ?? ''}`).toString('base64')}`;
  const options: RequestOptions = {
    host: '127.0.0.1',
    port,
    path,
    headers,
    agent: false,
    ca: readFileSync(pki.path(client.trust ?? pki.files.caCert)),
    cert: client.cert && readFileSync(pki.path(client.cert[0])),
    key: client.cert && readFileSync(pki.path(client.cert[1])),
    maxVersion: client.maxVersion,
    timeout: 10_000,
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(options, (res) => {
      const socket = res.socket;
      if (!(socket instanceof TLSSocket)) throw new Error('not a TLS socket');
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode!, body, serverCertFingerprint: fingerprint });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(pki.path(certFile))).fingerprint256;
}

let exporter: TestExporter | undefined;
let webConfigPath: string;

async function startWith(webConfig: string): Promise<number> {
  webConfigPath = pki.path(`web-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(webConfigPath, webConfig);
  exporter = await startTestExporter({ webConfigFile: webConfigPath });
  return (exporter.outpost.server.address() as AddressInfo).port;
}

const tls = (extra = '') => `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${extra}`;
const users = `basic_auth_users:\n  alice: '${HASH}'\n`;

beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => {
  pki.remove();
});
afterEach(async () => {
  await exporter?.close();
  exporter = undefined;
});

describe('TLS with basic auth', () => {
  it('answers the right password with 200, a wrong or missing one with 401', async () => {
    const port = await startWith(tls() + users);
    const ok = await get(port, '/metrics', { user: 'alice', password: 's3cret' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^outpost_up 1$/m);
    expect(ok.serverCertFingerprint).toBe(fingerprintOf(pki.files.serverCert));
    // Remembered credentials must not let a wrong password through afterwards.
    expect((await get(port, '/metrics', { user: 'alice', password: 'wrong' })).status).toBe(401);
    expect((await get(port, '/metrics', { user: 'mallory', password: 's3cret' })).status).toBe(401);
    const missing = await get(port, '/metrics');
    expect(missing.status).toBe(401);
    expect(missing.body).not.toContain('outpost_up');
    const paths = ['/', '/connections', '/policy', '/policy/suggest', '/map', '/map/graph.json', '/map/map.js', '/map/map.css', '/readyz'];
    for (const path of paths) expect((await get(port, path)).status).toBe(401);
    // The liveness probe of the image's HEALTHCHECK needs no credentials and tells nothing.
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await get(port, '/metrics', { user: 'alice', password: 's3cret' })).status).toBe(200);
    for (const path of ['/policy', '/policy/suggest', '/map', '/map/graph.json', '/map/map.js'])
      expect((await get(port, path, { user: 'alice', password: 's3cret' })).status).toBe(200);
  });

  it('refuses plain HTTP on the TLS port', async () => {
    const port = await startWith(tls() + users);
    const plain = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 5_000 }, (res) => {
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    await expect(plain).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('refuses a client that does not trust the certificate, and one held below min_version', async () => {
    const port = await startWith(tls('  min_version: TLS13\n'));
    await expect(get(port, '/healthz', { trust: 'stranger-ca.crt' })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    await expect(get(port, '/healthz', { maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert/i);
    expect((await get(port, '/healthz', { maxVersion: 'TLSv1.3' })).status).toBe(200);
  });

  it('works with curl, the way an operator checks it', async () => {
    const port = await startWith(tls() + users);
    const curl = (...args: string[]) =>
      promisify(execFile)('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        pki.path(pki.files.caCert),
        ...args,
        `https://127.0.0.1:${port}/metrics`,
      ]).then((r) => r.stdout);
    expect(await curl('-u', 'alice:s3cret')).toBe('200');
    expect(await curl('-u', 'alice:nope')).toBe('401');
  });
});

describe("the image's HEALTHCHECK", () => {
  it('finds a TLS exporter with basic auth healthy, and a stopped one not', async () => {
    const port = await startWith(tls() + users);
    // Not spawnSync: the exporter runs in this process and must go on answering.
    const healthcheck = () =>
      promisify(execFile)(process.execPath, [new URL('../../dist/healthcheck.js', import.meta.url).pathname], {
        env: { ...process.env, OUTPOST_WEB_LISTEN_ADDRESS: `:${port}`, OUTPOST_WEB_CONFIG_FILE: webConfigPath },
        timeout: 10_000,
      }).then(
        () => 0,
        (error: unknown) => (error as { code?: number }).code,
      );
    expect(await healthcheck()).toBe(0);
    await exporter!.close();
    exporter = undefined;
    expect(await healthcheck()).toBe(1);
  });
});

describe('client certificates', () => {
  const ca = (policy: string) => tls(`  client_ca_file: test-ca.crt\n  client_auth_type: ${policy}\n`);
  const mine: [string, string] = ['client.crt', 'client.key'];
  const strangers: [string, string] = ['stranger.crt', 'stranger.key'];

  it('RequireAndVerifyClientCert: only a certificate from the client CA gets in', async () => {
    const port = await startWith(ca('RequireAndVerifyClientCert'));
    await expect(get(port, '/metrics')).rejects.toThrow(/certificate required|socket hang up|ECONNRESET|alert/i);
    await expect(get(port, '/metrics', { cert: strangers })).rejects.toThrow(/unknown ca|socket hang up|ECONNRESET|alert/i);
    expect((await get(port, '/metrics', { cert: mine })).status).toBe(200);
  });

  it('RequireAndVerifyClientCert with basic auth: both are needed', async () => {
    const port = await startWith(ca('RequireAndVerifyClientCert') + users);
    expect((await get(port, '/metrics', { cert: mine })).status).toBe(401);
    expect((await get(port, '/metrics', { cert: mine, user: 'alice', password: 's3cret' })).status).toBe(200);
    await expect(get(port, '/metrics', { user: 'alice', password: 's3cret' })).rejects.toThrow();
  });

  it('VerifyClientCertIfGiven: none is fine, a wrong one is not', async () => {
    const port = await startWith(ca('VerifyClientCertIfGiven'));
    expect((await get(port, '/healthz')).status).toBe(200);
    expect((await get(port, '/healthz', { cert: mine })).status).toBe(200);
    await expect(get(port, '/healthz', { cert: strangers })).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('RequireAnyClientCert: any certificate, none refused', async () => {
    const port = await startWith(tls('  client_auth_type: RequireAnyClientCert\n'));
    await expect(get(port, '/healthz')).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect((await get(port, '/healthz', { cert: strangers })).status).toBe(200);
  });
});

describe('reloading the web config', () => {
  it('takes a new password and a rotated certificate without a restart, and keeps the old settings on a bad edit', async () => {
    const port = await startWith(tls() + users);
    expect((await get(port, '/metrics', { user: 'alice', password: 's3cret' })).status).toBe(200);

    const newHash = bcrypt.hashSync('n3w', 6);
    writeFileSync(
      webConfigPath,
      `tls_server_config:\n  cert_file: server-rotated.crt\n  key_file: server-rotated.key\nbasic_auth_users:\n  alice: '${newHash}'\n`,
    );
    await waitFor('the new password to work', async () => (await get(port, '/metrics', { user: 'alice', password: 'n3w' })).status === 200);
    expect((await get(port, '/metrics', { user: 'alice', password: 's3cret' })).status).toBe(401);
    expect((await get(port, '/healthz')).serverCertFingerprint).toBe(fingerprintOf(pki.files.otherServerCert));
    expect(exporter!.logs()).toMatch(/web config reloaded/);

    writeFileSync(webConfigPath, 'basic_auth_users:\n  alice: plain-text\n');
    await waitFor('the bad edit to be refused', () => /web config not reloaded.*expected a bcrypt hash/.test(exporter!.logs()));
    expect((await get(port, '/metrics', { user: 'alice', password: 'n3w' })).status).toBe(200);

    // TLS cannot be turned off under running connections: refused, the running settings stay.
    writeFileSync(webConfigPath, users);
    await waitFor('turning TLS off to be refused', () => /turning TLS on or off needs a restart/.test(exporter!.logs()));
    expect((await get(port, '/metrics', { user: 'alice', password: 'n3w' })).status).toBe(200);
  });
});

describe('a bad web config at start', () => {
  it.each([
    ['a password in clear', 'basic_auth_users:\n  alice: s3cret\n', 'basic_auth_users.alice: expected a bcrypt hash'],
    ['a missing key file', 'tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n', 'key_file: cannot read "missing.key"'],
  ])('%s: exits 2 with the reason, before opening the port', async (_what, text, reason) => {
    const path = pki.path('bad-web.yml');
    writeFileSync(path, text);
    const port = await freePort();
    const result = spawnSync(process.execPath, [MAIN, `--web.listen-address=127.0.0.1:${port}`, `--web.config.file=${path}`], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`invalid --web.config.file: ${path}:`);
    expect(result.stderr).toContain(reason);
    // It exited; and the port was never taken by it (nothing listens there now either).
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.on('error', () => {
        resolve(true);
      });
    });
    expect(refused).toBe(true);
    expect(result.stderr).not.toContain('listening');
  });
});
