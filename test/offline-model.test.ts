/**
 * The offline model is development-only (PROTOCOL §6.4): it lives in dev/ and
 * the server imports it dynamically, only when it serves. Each test runs the
 * compiled server (`npm run build` first) with a `--import` hook that records
 * the URL of every module the process loads.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionEnv, serverEnvBase } from './support/env.js';
import { startNodeProcess } from './support/app.js';

const hook = pathToFileURL(path.resolve(import.meta.dirname, 'support/loaded-modules.mjs')).href;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sam-loaded-modules-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts the server with `env`, waits for /health, stops it with SIGTERM; returns the URLs it loaded. */
async function modulesLoaded(name: string, env: Record<string, string | undefined>): Promise<string[]> {
  const file = path.join(dir, `${name}.txt`);
  const node = await startNodeProcess({ ...env, NODE_OPTIONS: `--import=${hook}`, LOADED_MODULES_FILE: file });
  try {
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
  } finally {
    expect(await node.stop()).toBe(0);
  }
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}

describe('the offline model stays out of production', () => {
  it('a production server, from start through /health to SIGTERM, loads deps.js and no module of the offline model', async () => {
    // productionEnv gives a generated ANTHROPIC_API_KEY and an ANTHROPIC_BASE_URL on a closed local port.
    const urls = await modulesLoaded('production', productionEnv());
    expect(urls).toContainEqual(expect.stringMatching(/\/dist\/server\/main\.js$/));
    expect(urls).toContainEqual(expect.stringMatching(/\/dist\/server\/deps\.js$/));
    expect(urls.filter((url) => url.includes('offline-model'))).toEqual([]);
  });

  it('without an API key outside production the same server loads dist/dev/offline-model, so the hook sees the dynamic import', async () => {
    const urls = await modulesLoaded('test', { ...serverEnvBase(), ENVIRONMENT: 'test', AUTO_MIGRATE: 'false' });
    expect(urls).toContainEqual(expect.stringMatching(/\/dist\/dev\/offline-model\/server\.js$/));
  });
});
