import { readFileSync } from 'node:fs';
import { containerFromInspect, type Container } from '../../../src/inventory/container.js';
import { InspectAnswer } from '../../../src/inventory/dockerAnswers.js';

/**
 * Real inspect answers of a labelled compose-like project "shop" (web, api, db) and an unlabelled
 * container (stray), as `docker inspect` gave them:
 * - web: outpost.allow.outbound="api:8080, host:9100, 10.0.0.0/8, [fd00::/64]:443"
 * - api: outpost.allow.inbound="web:8080", outpost.allow.outbound="db:5432,cache:99999,bad peer", team=payments
 * - db: outpost.allow.inbound="api:5432"
 */
const answers = InspectAnswer.array().parse(JSON.parse(readFileSync(new URL('./fixtures/containers.json', import.meta.url), 'utf8')));
const byName = new Map(answers.map((a) => [a.Name.slice(1), containerFromInspect(a)!]));
export const web = byName.get('shop-web')!;
export const api = byName.get('shop-api')!;
export const db = byName.get('shop-db')!;
export const stray = byName.get('stray')!;
export const containers: Container[] = [web, api, db, stray];
