import picomatch from 'picomatch';
import type { BlockList } from 'node:net';
import type { Container } from '../inventory/container.js';
import { addressBlockList, inBlockList } from '../net/ipAddress.js';

/** One end of a link, as the policy sees it. */
export interface Endpoint {
  /** The container at this end, when it is one of this host's. */
  container?: Container;
  /** A process of the host, outside every container (remote_container="host"). */
  host: boolean;
  /** Its address, when known (not for an end folded into ~other, nor for the judged container's own end). */
  address?: string;
  /** The names the judged container resolved to that address (src/names/), while the answer holds. */
  names?: readonly string[];
}

/**
 * Which ends a selector matches. The fields given must all match (AND); a rule's list of
 * selectors matches when one does (OR).
 */
export interface Selector {
  /** `*`: anything. */
  any?: true;
  /** `host`: a process of the host. */
  host?: true;
  /** Container name, glob (`*`, `?`). */
  container?: string;
  /** Image as the container was created from it, glob. */
  image?: string;
  /** Compose project (com.docker.compose.project). */
  project?: string;
  /** Compose service (com.docker.compose.service). */
  service?: string;
  /** A label: `key` (present) or `key=value`. */
  label?: string;
  /** A Docker network the container is attached to. */
  network?: string;
  /** An address or CIDR: the end's address, or one of the container's, is in it. */
  cidr?: string;
  /**
   * A DNS name (`api.example.com`) or every name under one (`*.example.com`), lower case: the
   * judged container resolved the end's address from a name it matches.
   */
  domain?: string;
  /** Container id (a label rule's own container). */
  id?: string;
  /** A label entry's peer name: a container of this name, or a compose service of `project`. */
  peer?: { name: string; project: string };
}

/** A selector's globs and CIDR, compiled once; kept as long as the selector (its rule) lives. */
interface CompiledSelector {
  container?: picomatch.Matcher;
  image?: picomatch.Matcher;
  cidr?: BlockList;
}

const compiledSelectors = new WeakMap<Selector, CompiledSelector>();

function compiled(s: Selector): CompiledSelector {
  let c = compiledSelectors.get(s);
  if (!c) {
    c = {
      ...(s.container !== undefined ? { container: globPattern(s.container) } : {}),
      ...(s.image !== undefined ? { image: globPattern(s.image) } : {}),
      ...(s.cidr !== undefined ? { cidr: addressBlockList([s.cidr]) } : {}),
    };
    compiledSelectors.set(s, c);
  }
  return c;
}

/**
 * A glob over the whole value (picomatch): `*` any run of characters, `/` included (bash mode:
 * an image's registry and path are one value), `?` one, `[abc]` and `{a,b}` as in a shell.
 * Off the per-socket path (once per link and rule a scrape): 43 ns a match, ×2.1 the plain
 * regular expression it replaced (npm run bench:hot-path, 2026-12-02), for a grammar users know.
 */
function globPattern(glob: string): picomatch.Matcher {
  return picomatch(glob, { bash: true, dot: true });
}

/** `api.example.com`, or `*.` and a name: every name under it, not the name itself (as Cilium's toFQDNs matchPattern). */
const DOMAIN_PATTERN = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

/** Whether `text` is a name or a `*.` pattern a domain selector takes (any case; it is kept lower). */
export function isDomainPattern(text: string): boolean {
  return text.length <= 253 && DOMAIN_PATTERN.test(text.toLowerCase()) && text.includes('.');
}

/** Whether a name (as src/names writes it: lower case) is the domain selector's, or under its `*.`. */
export function domainMatches(pattern: string, name: string): boolean {
  return pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1 : name === pattern;
}

/** The selector names containers by what they are (not only by address or `host`). */
export function selectsContainers(s: Selector): boolean {
  return Boolean(s.any || s.container || s.image || s.project || s.service || s.label || s.network || s.id || s.peer);
}

function matchesContainer(s: Selector, c: Container): boolean {
  if (s.id !== undefined && c.id !== s.id) return false;
  const { container, image } = compiled(s);
  if (container && !container(c.name)) return false;
  if (image && !image(c.image)) return false;
  if (s.project !== undefined && c.composeProject !== s.project) return false;
  if (s.service !== undefined && c.composeService !== s.service) return false;
  if (s.network !== undefined && !c.addresses.some((a) => a.network === s.network) && c.networkMode !== s.network) return false;
  if (s.label !== undefined) {
    const eq = s.label.indexOf('=');
    const key = eq < 0 ? s.label : s.label.slice(0, eq);
    if (!(key in c.labels) || (eq >= 0 && c.labels[key] !== s.label.slice(eq + 1))) return false;
  }
  if (
    s.peer &&
    c.name !== s.peer.name &&
    !(s.peer.project !== '' && c.composeProject === s.peer.project && c.composeService === s.peer.name)
  ) {
    return false;
  }
  return true;
}

/** Whether the selector matches an end of a link. */
export function matchesEndpoint(s: Selector, e: Endpoint): boolean {
  if (s.any) return true;
  if (s.host && !e.host) return false;
  const { cidr } = compiled(s);
  if (
    cidr &&
    !(e.address !== undefined && inBlockList(cidr, e.address)) &&
    !e.container?.addresses.some((a) => inBlockList(cidr, a.address))
  )
    return false;
  if (s.domain !== undefined && !(e.names ?? []).some((n) => domainMatches(s.domain ?? '', n))) return false;
  if (selectsContainers(s)) return e.container !== undefined && matchesContainer(s, e.container);
  return s.host === true || s.cidr !== undefined || s.domain !== undefined;
}

/** Whether the selector covers this container, i.e. makes the policy judge its connections. */
export function policesContainer(s: Selector, c: Container): boolean {
  return selectsContainers(s) && matchesEndpoint(s, { container: c, host: false });
}

/** The selector in the policy file's own grammar. */
export function selectorText(s: Selector): string | Record<string, string> {
  if (s.any) return '*';
  if (s.host && Object.keys(s).length === 1) return 'host';
  const out: Record<string, string> = {};
  for (const key of ['container', 'image', 'project', 'service', 'label', 'network', 'cidr', 'domain', 'id'] as const) {
    if (s[key] !== undefined) out[key] = s[key];
  }
  if (s.host) out.host = 'true';
  if (s.peer) out.peer = s.peer.project ? `${s.peer.name} (container, or service of project ${s.peer.project})` : s.peer.name;
  return out;
}
