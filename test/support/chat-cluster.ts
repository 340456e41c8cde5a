/**
 * Two production-mode nodes of one deployment whose assistant talks to the
 * project's offline model (an Anthropic-compatible server started per file),
 * for the chat tests: started before the file's tests, closed after them with
 * the tabs they opened; every test starts with no upstream script.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { productionEnv, randomSecret, uniquePrefix } from './env.js';
import { startTestApp, type TestApp } from './app.js';
import { signUp } from './users.js';
import { connectReady, tabTracker, type Tab } from './sockets.js';
import { createAnthropicCompatibleServer, type AnthropicCompatibleServer } from '../../dev/offline-model/server.js';
import type { Message } from '../../shared/schemas/chat.js';

/** `name` names the nodes (`<name>-a`, `<name>-b`); `env` adds to what both share. */
export function useChatCluster(name: string, env: Record<string, string> = {}) {
  let upstream: AnthropicCompatibleServer | undefined;
  let nodes: [TestApp, TestApp] | undefined;
  let shared: Record<string, string> = {};
  const tabs = tabTracker();
  beforeAll(async () => {
    upstream = await createAnthropicCompatibleServer({ deltaDelayMs: 0 });
    shared = {
      REDIS_PREFIX: uniquePrefix(),
      SECRET_KEY: randomSecret(),
      ANTHROPIC_BASE_URL: upstream.url,
      ANTHROPIC_MODEL: 'claude-test-model',
      RATE_LIMIT_PER_MINUTE: '10000',
      ...env,
    };
    nodes = [await startTestApp(productionEnv({ ...shared, NODE_ID: `${name}-a` })), await startTestApp(productionEnv({ ...shared, NODE_ID: `${name}-b` }))];
  });
  beforeEach(() => upstream?.setScript(undefined));
  afterAll(async () => {
    tabs.closeAll();
    await Promise.all((nodes ?? []).map((n) => n.close()));
    await upstream?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the chat cluster starts in beforeAll');
    return value;
  };
  const cluster = {
    get a() {
      return started(nodes)[0];
    },
    get b() {
      return started(nodes)[1];
    },
    get upstream() {
      return started(upstream);
    },
    /** the environment both nodes share (for another node of the same deployment) */
    get shared() {
      return shared;
    },
    track: tabs.track,
    /** A new user with a tab on each node. */
    async twoTabs(fields: { timezone?: string; fullName?: string } = {}) {
      const user = await signUp(cluster.a.url, fields);
      const tabA = tabs.track(await connectReady(cluster.a.url, user.auth.accessToken));
      const tabB = tabs.track(await connectReady(cluster.b.url, user.auth.accessToken));
      return { user, tabA, tabB, both: [tabA, tabB] };
    },
  };
  return cluster;
}

/** The `chat:done` of `messageId` in `tab`. */
export const doneOf = (tab: Tab, messageId: string) => tab.waitFor('chat:done', (d) => d.message.id === messageId, 15_000) as Promise<{ message: Message }>;
