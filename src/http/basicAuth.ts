import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Middleware } from 'koa';

// Compared against when the user is unknown, so that a wrong name costs as long as a wrong password.
const UNKNOWN_USER_HASH = '$2b$10$' + 'O'.repeat(53);

/** Parses an `Authorization: Basic …` header; undefined when absent or malformed. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * HTTP basic auth against bcrypt hashes, as exporter-toolkit's `basic_auth_users`. A bcrypt
 * check costs tens of milliseconds by design; a scrape every 15 s would pay it every time, so
 * credentials once verified are remembered (as a digest, with the hash they matched: a new
 * hash for the user forgets them). Only successes are remembered, so failures cannot fill it.
 */
export function basicAuth(users: () => ReadonlyMap<string, string>): Middleware {
  const verified = new Set<string>();
  return async (ctx, next) => {
    const current = users();
    if (current.size === 0) {
      await next();
      return;
    }
    const credentials = parseBasicAuthorization(ctx.get('Authorization') || undefined);
    if (credentials) {
      const hash = current.get(credentials.user);
      const digest = createHash('sha256').update(`${credentials.user}\0${credentials.password}\0${hash}`).digest('base64');
      if (hash !== undefined && verified.has(digest)) {
        await next();
        return;
      }
      const matches = await bcrypt.compare(credentials.password, hash ?? UNKNOWN_USER_HASH);
      if (matches && hash !== undefined) {
        if (verified.size >= 1024) verified.clear();
        verified.add(digest);
        await next();
        return;
      }
    }
    ctx.status = 401;
    ctx.set('WWW-Authenticate', 'Basic realm="outpost", charset="UTF-8"');
    ctx.type = 'text/plain';
    ctx.body = 'Unauthorized\n';
  };
}
