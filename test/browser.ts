/**
 * Shared by the browser suites (the bridge's page, the Figma UI, the Photoshop panel): Debian's
 * chromium driven by playwright-core, and bounds on every step, since page.evaluate and
 * launch/close have no timeout of their own.
 */
import { existsSync } from 'node:fs';
import type { Frame, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const STEP_MS = 30_000;

export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: the browser tests need Debian's chromium. Install it with: apt-get update && apt-get install -y chromium (CI does this in .ci/run)`);
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Records every text the progress line (#progress-text) shows, from now until read. */
export async function recordProgress(target: Page | Frame): Promise<void> {
  await within(
    target.evaluate(() => {
      const w = window as unknown as { progressLog: string[] };
      w.progressLog = [];
      const text = document.getElementById('progress-text')!;
      new MutationObserver(() => w.progressLog.push(text.textContent ?? '')).observe(text, { childList: true, characterData: true, subtree: true });
    }),
    STEP_MS,
    'installing the progress recorder',
  );
}

export const progressLog = (target: Page | Frame) => within(target.evaluate(() => (window as unknown as { progressLog: string[] }).progressLog), STEP_MS, 'reading the progress log');
