import { mkdir } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (.ci/run installs it); playwright-core drives it and downloads no browser. */
export const CHROMIUM = process.env.OUTPOST_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Where tests write what a person looks at afterwards (screenshots); not committed. */
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in CI: no sandbox. The rest keeps Chromium from calling Google's services, which this
    // machine's closed network refuses (and which would be requests leaving 127.0.0.1).
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
    ],
  });
}

/** A page and what it did that a test must see: console errors, requests, dialogs. */
export interface WatchedPage {
  page: Page;
  /** Console errors and uncaught exceptions (a CSP violation is one). */
  errors: string[];
  /** Every URL the page asked for. */
  requests: string[];
  /** Every alert/confirm/prompt the page opened (dismissed at once). */
  dialogs: string[];
}

export async function openWatchedPage(browser: Browser, url: string, viewport = { width: 1280, height: 800 }): Promise<WatchedPage> {
  const page = await browser.newPage({ viewport });
  const watched: WatchedPage = { page, errors: [], requests: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') watched.errors.push(m.text());
  });
  page.on('pageerror', (e) => watched.errors.push(e.message));
  page.on('request', (r) => watched.requests.push(r.url()));
  page.on('dialog', (d) => {
    watched.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(url);
  return watched;
}

export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}.png`;
  await page.screenshot({ path, fullPage });
  return path;
}
