import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidWebConfigError } from '../../../src/base/errors.js';
import { parseBasicAuthorization } from '../../../src/http/basicAuth.js';
import { loadWebConfig } from '../../../src/http/webConfig.js';
import { createTestPki, type TestPki } from '../../support/tls.js';

let pki: TestPki;
const HASH = bcrypt.hashSync('s3cret', 4);

beforeAll(() => {
  pki = createTestPki();
  // The config lives one folder down: the names in it are relative to it, not to the working directory.
  mkdirSync(join(pki.dir, 'conf'));
});
afterAll(() => {
  pki.remove();
});

function configFile(text: string): string {
  const path = join(pki.dir, 'conf', `web-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(path, text);
  return path;
}

async function refusal(text: string): Promise<string> {
  const error = await loadWebConfig(configFile(text)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidWebConfigError);
  return (error as Error).message;
}

describe('loadWebConfig', () => {
  it('reads an empty file as plain HTTP without authentication', async () => {
    const config = await loadWebConfig(configFile(''));
    expect(config.tls).toBeUndefined();
    expect(config.basicAuthUsers.size).toBe(0);
  });

  it('reads basic_auth_users, including the $2y$ hashes htpasswd writes', async () => {
    const y = HASH.replace(/^\$2b\$/, '$2y$');
    const config = await loadWebConfig(configFile(`basic_auth_users:\n  alice: '${HASH}'\n  bob: '${y}'\n`));
    expect([...config.basicAuthUsers]).toEqual([
      ['alice', HASH],
      ['bob', y],
    ]);
  });

  it('reads TLS files relative to the config file, with exporter-toolkit defaults', async () => {
    const config = await loadWebConfig(configFile(`tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n`));
    expect(config.tls).toMatchObject({ clientAuthType: 'NoClientCert', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ca: undefined });
    expect(config.tls!.cert.toString()).toContain('BEGIN CERTIFICATE');
    expect(config.tls!.files).toEqual([pki.path('server.crt'), pki.path('server.key')]);
  });

  it('reads a client CA and the client auth policy', async () => {
    const config = await loadWebConfig(
      configFile(
        `tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  client_ca_file: ../test-ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS13\n`,
      ),
    );
    expect(config.tls).toMatchObject({ clientAuthType: 'RequireAndVerifyClientCert', minVersion: 'TLSv1.3' });
    expect(config.tls!.ca!.toString()).toContain('BEGIN CERTIFICATE');
  });

  it.each([
    ['an unknown top-level key', 'tls_config:\n  cert_file: x\n', 'unknown key "tls_config"'],
    [
      'an unknown TLS key',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n',
      'tls_server_config: unknown key "cipher_suites"',
    ],
    ['a password in clear', 'basic_auth_users:\n  alice: s3cret\n', 'basic_auth_users.alice: expected a bcrypt hash'],
    ['a user name with a colon', `basic_auth_users:\n  "a:b": '${HASH}'\n`, 'cannot contain ":"'],
    ['a certificate without its key', 'tls_server_config:\n  cert_file: ../server.crt\n', 'tls_server_config.key_file'],
    [
      'a certificate file that is not there',
      'tls_server_config:\n  cert_file: ../nope.crt\n  key_file: ../server.key\n',
      'cert_file: cannot read "../nope.crt"',
    ],
    [
      'a key that does not match the certificate',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../client.key\n',
      'do not load',
    ],
    [
      'a client CA without a policy',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  client_ca_file: ../test-ca.crt\n',
      'client_auth_type is NoClientCert',
    ],
    [
      'a verifying policy without a CA',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  client_auth_type: RequireAndVerifyClientCert\n',
      'no client_ca_file',
    ],
    [
      'an unknown policy',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  client_auth_type: Maybe\n',
      'tls_server_config.client_auth_type',
    ],
    [
      'an unknown TLS version',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  min_version: SSL3\n',
      'tls_server_config.min_version',
    ],
    [
      'versions the wrong way round',
      'tls_server_config:\n  cert_file: ../server.crt\n  key_file: ../server.key\n  min_version: TLS13\n  max_version: TLS12\n',
      'min_version is above max_version',
    ],
    ['broken YAML', 'basic_auth_users: [\n', 'not YAML'],
    ['a key given twice', `basic_auth_users:\n  alice: '${HASH}'\n  alice: '${HASH}'\n`, 'not YAML'],
    ['a list instead of a mapping', '- a\n- b\n', 'expected object'],
  ])('refuses %s, naming the file and the problem', async (_what, text, expected) => {
    const message = await refusal(text);
    expect(message).toMatch(/^invalid --web\.config\.file: .*web-.*\.yml(:\d+)?: /);
    expect(message).toContain(expected);
  });

  it('names the line at fault, as file:line: problem', async () => {
    expect(await refusal(`basic_auth_users:\n  bob: '${HASH}'\n  alice: s3cret\n`)).toMatch(
      /\.yml:3: basic_auth_users\.alice: expected a bcrypt hash/,
    );
    expect(await refusal('tls_server_config:\n  key_file: ../server.key\n  cert_file: ../nope.crt\n')).toMatch(
      /\.yml:3: tls_server_config\.cert_file: cannot read "\.\.\/nope\.crt"/,
    );
    expect(await refusal('basic_auth_users: [\n')).toMatch(/\.yml:2: not YAML/);
  });

  it('refuses a file that is not there', async () => {
    await expect(loadWebConfig(join(pki.dir, 'absent.yml'))).rejects.toThrow(/absent\.yml: cannot read it: ENOENT/);
  });
});

describe('parseBasicAuthorization', () => {
  const header = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  it.each([
    [header('alice:s3cret'), { user: 'alice', password: 's3cret' }],
    [header('alice:with:colons'), { user: 'alice', password: 'with:colons' }],
    [header('alice:'), { user: 'alice', password: '' }],
    [`basic  ${Buffer.from('ü:pässword').toString('base64')}`, { user: 'ü', password: 'pässword' }],
    [header('no-colon'), undefined],
    ['Bearer abc', undefined],
    ['Basic !!!', undefined],
    [undefined, undefined],
  ])('%s → %j', (value, expected) => {
    expect(parseBasicAuthorization(value)).toEqual(expected);
  });
});
