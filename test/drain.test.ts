/**
 * The drain on SIGTERM (README "Deploying"): a node process of a two-node
 * deployment stops taking sockets, closes its own once their events are
 * answered (their clients reconnect to the other node), lets the answers it
 * is generating finish until DRAIN_TIMEOUT_MS, ends the rest `interrupted`,
 * and exits 0; nothing acknowledged is lost.
 */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { productionEnv } from './support/env.js';
import { startNodeProcess, type NodeProcess } from './support/app.js';
import { signUp } from './support/users.js';
import { useChatCluster, doneOf } from './support/chat-cluster.js';
import { connectError, connectReady, type Tab } from './support/sockets.js';
import { RestClient } from './support/http.js';
import { until } from './support/until.js';

const cluster = useChatCluster('drain');
const { track } = cluster;

const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') + '.';

const leavingNode = (drainMs: number, name: string) =>
  startNodeProcess(productionEnv({ ...cluster.shared, NODE_ID: `drain-${name}`, DRAIN_TIMEOUT_MS: String(drainMs) }));

/**
 * What a client behind a load balancer does when its node closes its socket (PROTOCOL §8): it reconnects, and the
 * balancer sends it to the node that still listens. Resolves with the new tab and when it was ready.
 */
async function followToOtherNode(tab: Tab, token: string): Promise<{ tab: Tab & { ready: any }; reason: string; at: number }> {
  const reason = await new Promise<string>((resolve) => tab.socket.once('disconnect', resolve));
  const next = track(await connectReady(cluster.a.url, token));
  return { tab: next, reason, at: Date.now() };
}

/** A tab of the leaving node that creates tasks one after another until its socket closes: the ids acknowledged `ok`. */
async function writeUntilClosed(tab: Tab): Promise<string[]> {
  const acked: string[] = [];
  while (tab.socket.connected) {
    const id = randomUUID();
    const res = await tab.request('task:create', { id, title: `drain ${id}` }, 5_000).catch(() => undefined);
    if (res?.ok) acked.push(res.data.task.id);
  }
  return acked;
}

/** SIGTERM: the exit code to come, and when the signal went. */
function stopAndMeasure(node: NodeProcess): { exit: Promise<number | null>; at: number } {
  return { at: Date.now(), exit: node.stop() };
}

describe('graceful drain on SIGTERM', () => {
  it('[CHAT-7][SYNC-2] an answer that ends within DRAIN_TIMEOUT_MS completes in every tab; the node\'s clients are on the other node within 5 s; no acknowledged write is lost; exit 0', async () => {
    const node = await leavingNode(15_000, 'finishes');
    try {
      const user = await signUp(node.url);
      const token = user.auth.accessToken;
      const watcher = track(await connectReady(cluster.a.url, token));
      const speaker = track(await connectReady(node.url, token));
      const writer = track(await connectReady(node.url, token));
      expect(speaker.ready.nodeId).toBe('drain-finishes');

      // About 4 s of answer: longer than the reconnect, well inside the deadline.
      cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 6, delayMs: 60 });
      const sent = await speaker.call('chat:send', { content: 'a story while I deploy' });
      await watcher.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId && d.seq >= 1);
      const writes = writeUntilClosed(writer);
      await until(async () => writer.received.filter((r) => r.event === 'task:changed').length, (n) => n >= 3, 10_000, 'first writes');
      const speakerMoved = followToOtherNode(speaker, token);
      const writerMoved = followToOtherNode(writer, token);

      const { exit, at } = stopAndMeasure(node);
      const [moved, movedWriter] = await Promise.all([speakerMoved, writerMoved]);
      // A server-side disconnect, which clients answer by reconnecting (not by signing out).
      expect(moved.reason).toBe('io server disconnect');
      expect(moved.tab.ready.nodeId).toBe(cluster.a.deps.config.nodeId);
      expect(moved.at - at).toBeLessThan(5_000);
      expect(movedWriter.at - at).toBeLessThan(5_000);
      // The node takes no new sockets while it drains.
      expect(await connectError(node.url, token)).not.toBe('');

      const { message } = await doneOf(watcher, sent.assistantMessageId);
      expect(message.status).toBe('complete');
      expect(message.content).toBe(LONG);
      // The moved tab hears the end of the answer from the other node, and its history agrees.
      const end = await doneOf(moved.tab, sent.assistantMessageId);
      expect(end.message.status).toBe('complete');
      const history = await moved.tab.call('chat:history', { conversationId: sent.conversationId });
      expect(history.messages.find((m) => m.id === sent.assistantMessageId)).toMatchObject({ status: 'complete', content: LONG });
      expect(await exit).toBe(0);

      // Every task:create acknowledged `ok` is in PostgreSQL, once; the moved tab catches up to all of them.
      const acked = await writes;
      expect(acked.length).toBeGreaterThan(3);
      const sync = await movedWriter.tab.call('task:sync', { since: 0 });
      const stored = (await cluster.a.deps.orm.em.fork().getConnection().execute('select id from tasks where user_id = ?', [user.auth.user.id])) as { id: string }[];
      const storedIds = new Set(stored.map((r) => r.id));
      for (const id of acked) expect(storedIds.has(id), id).toBe(true);
      expect(sync.tasks.map((t) => t.id).sort()).toEqual([...storedIds].sort());
    } finally {
      await node.kill();
    }
  }, 60_000);

  it('[CHAT-7] an answer still running at DRAIN_TIMEOUT_MS ends interrupted in every tab, and the node exits 0', async () => {
    const node = await leavingNode(1_500, 'deadline');
    try {
      const user = await signUp(node.url);
      const token = user.auth.accessToken;
      const watcher = track(await connectReady(cluster.a.url, token));
      const speaker = track(await connectReady(node.url, token));
      // About 40 s of answer: far past the deadline.
      cluster.upstream.enqueue({ kind: 'text', text: LONG, chunkSize: 2, delayMs: 200 });
      const sent = await speaker.call('chat:send', { content: 'a very slow answer' });
      await watcher.waitFor('chat:delta', (d) => d.messageId === sent.assistantMessageId && d.seq >= 1);
      const moved = followToOtherNode(speaker, token);
      const { exit, at } = stopAndMeasure(node);
      const { tab } = await moved;
      const [{ message }, end] = await Promise.all([doneOf(watcher, sent.assistantMessageId), doneOf(tab, sent.assistantMessageId)]);
      expect(message.status).toBe('interrupted');
      expect(end.message.status).toBe('interrupted');
      expect(message.content.length).toBeGreaterThan(0);
      // Not before the deadline, and not long after it.
      expect(Date.now() - at).toBeGreaterThanOrEqual(1_400);
      expect(Date.now() - at).toBeLessThan(10_000);
      expect(await exit).toBe(0);
      const stored = await cluster.a.deps.orm.em.fork().getConnection().execute('select status from messages where id = ?', [sent.assistantMessageId]);
      expect(stored[0]).toMatchObject({ status: 'interrupted' });
    } finally {
      await node.kill();
    }
  }, 60_000);

  it('a draining node with nothing running exits 0 at once, and refuses HTTP meanwhile', async () => {
    const node = await leavingNode(20_000, 'idle');
    try {
      const user = await signUp(node.url);
      const tab = track(await connectReady(node.url, user.auth.accessToken));
      const started = Date.now();
      const { exit } = stopAndMeasure(node);
      expect(await exit).toBe(0);
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(tab.socket.connected).toBe(false);
      await expect(new RestClient(node.url).get('/health')).rejects.toThrow();
    } finally {
      await node.kill();
    }
  }, 30_000);

  it('a request that reaches a draining node is 503 UNAVAILABLE with Retry-After, on its own connection', async () => {
    const node = await leavingNode(20_000, 'http');
    const socket = net.connect(node.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      let reply = '';
      socket.on('data', (d: Buffer) => (reply += d.toString('utf8')));
      // A request under way when the signal comes: its headers end after it.
      socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await new Promise((r) => setTimeout(r, 200));
      const { exit } = stopAndMeasure(node);
      await node.logs.waitFor((r) => r.msg === 'draining');
      socket.write('\r\n');
      await until(async () => reply, (r) => r.includes('\r\n\r\n{'), 5_000, 'the answer');
      expect(reply).toMatch(/^HTTP\/1\.1 503/);
      expect(reply.toLowerCase()).toContain('retry-after: 1');
      expect(reply.toLowerCase()).toContain('connection: close');
      expect(reply).toContain('"code":"UNAVAILABLE"');
      expect(await exit).toBe(0);
    } finally {
      socket.destroy();
      await node.kill();
    }
  }, 30_000);
});
