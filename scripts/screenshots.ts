/**
 * `npm run screenshots`: the README's pictures of Sam, taken from the real app
 * on a realistic day rather than from test data.
 *
 * The npm script builds first (`npm run build`); run directly
 * (`npx tsx scripts/screenshots.ts`) it expects a current `dist/`. It needs
 * PostgreSQL and Redis as `npm start` does (DATABASE_URL and REDIS_URL are
 * honoured, defaults 127.0.0.1) and Chromium (CHROMIUM_PATH, default
 * /usr/bin/chromium).
 *
 * It starts the compiled server on a throwaway database `sam_screens_<random>`
 * (the server migrates it at start), with a generated SECRET_KEY, its own
 * REDIS_PREFIX and no ANTHROPIC_API_KEY, so the offline model answers. It signs
 * a user up through the REST API with a generated password, fills a day of
 * tasks and a short chat through the Socket.IO API, logs in through the UI in
 * headless Chromium and writes docs/screenshot-light.png and
 * docs/screenshot-dark.png. The server, the database and the Redis keys go
 * away at the end, also on failure or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Ack } from '../shared/errors.js';
import type { AckData, ClientToServerEvents, RequestEvent, RequestPayload, ServerToClientEvents } from '../shared/events.js';
import type { TaskCreate } from '../shared/schemas/tasks.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const mainJs = path.join(repoRoot, 'dist/server/main.js');
const outDir = path.join(repoRoot, 'docs');
const viewport = { width: 1440, height: 900 };
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const run = randomBytes(4).toString('hex');
const databaseUrl = withDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/sam', `sam_screens_${run}`);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = `sam_screens:${run}:`;
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const user = {
  email: 'maya.chen@example.com',
  fullName: 'Maya Chen',
  // Generated per run and never written down: the database is dropped at the end.
  password: `Sam-${randomBytes(12).toString('base64url')}-9a!Z`,
};

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

// ---------------------------------------------------------------- the day

const today = calendarDate(new Date());
const day = (offset: number) => addDays(today, offset);
const weekday = (date: string) => new Date(`${date}T12:00:00Z`).toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' });

/** What Maya has on her plate; `after` names a task this one waits for. */
const plan: (Omit<TaskCreate, 'dependencies'> & { key?: string; after?: string; complete?: boolean })[] = [
  { title: 'Send the Q3 budget to Priya', project: 'Work', deadline: day(0), intensity: 3 },
  { title: `Prepare slides for ${weekday(day(2))}'s product review`, project: 'Work', deadline: day(2), intensity: 4, status: 'in_progress', description: 'Roadmap, churn numbers, the two open hiring decisions.' },
  { title: 'Finalize the onboarding copy', project: 'Work', deadline: day(4), intensity: 2, status: 'waiting_on', waitingOn: 'Daniel’s mockups' },
  { key: 'receipts', title: 'Collect receipts from the team offsite', project: 'Work', deadline: day(1), intensity: 1 },
  { title: 'Submit the offsite expense report', project: 'Work', deadline: day(5), intensity: 2, after: 'receipts' },
  { title: 'Reply to Jonas about the hiring plan', project: 'Work', intensity: 1 },
  { title: 'Water the plants', project: 'Home', deadline: day(0), intensity: 1, recurrence: { type: 'weekly', interval: 1, endDate: null } },
  { title: 'Fix the dripping kitchen tap', project: 'Home', intensity: 3 },
  { title: 'Renew passport', project: 'Home', deadline: day(6), intensity: 2, description: 'Photos from the post office; the old passport is in the desk drawer.' },
  { title: 'Pay the electricity bill', project: 'Home', deadline: day(0), intensity: 1, complete: true },
  { title: 'Book flights to Lisbon', project: 'Lisbon trip', deadline: day(3), intensity: 2 },
  { title: 'Call Grandma for her birthday', deadline: day(1), intensity: 1 },
  { title: 'Return the library books', deadline: day(3), intensity: 1 },
];

/** Conversations, oldest first; the last one is on screen. Only phrases the offline model acts on. */
const conversations: { title: string; messages: string[] }[] = [
  { title: 'This week', messages: ['show my upcoming tasks'] },
  { title: 'Grandma’s birthday', messages: ['add task: Buy flowers for Grandma'] },
  { title: 'Plan for today', messages: ['what should I do next?', 'add task: Book dentist appointment', 'show my waiting tasks'] },
];

// ---------------------------------------------------------------- main

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (err) {
        console.error('cleanup step failed:', (err as Error).message);
      }
    }
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanUp().then(() => process.exit(130));
  });
}

const started = Date.now();
try {
  await createDatabase();
  cleanups.push(dropDatabase, deleteRedisKeys);

  const server = await startServer();
  cleanups.push(server.stop);
  log(`server on ${server.url}`);

  const token = await signUp(server.url);
  const socket = await connect(server.url, token);
  cleanups.push(async () => socket.disconnect());
  await fillTheDay(socket);
  socket.disconnect();
  log('the day is filled');

  await takeScreenshots(server.url);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  process.exitCode = 1;
  console.error('screenshots failed:', err);
} finally {
  await cleanUp();
}

function log(message: string): void {
  console.log(`[screenshots] ${message}`);
}

// ---------------------------------------------------------------- infrastructure

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs SQL on the server's maintenance database `postgres`. */
async function admin(sql: string): Promise<void> {
  const orm = await MikroORM.init({ clientUrl: withDatabase(databaseUrl, 'postgres'), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
  try {
    await orm.em.getConnection().execute(sql);
  } finally {
    await orm.close(true);
  }
}

async function createDatabase(): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  await admin(`create database "${name}"`);
}

async function dropDatabase(): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  await admin(`drop database if exists "${name}" with (force)`);
  log(`dropped database ${name}`);
}

async function deleteRedisKeys(): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    log(`deleted ${deleted} Redis keys under ${redisPrefix}`);
  } finally {
    redis.disconnect();
  }
}

async function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [mainJs], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      ENVIRONMENT: 'development',
      PORT: '0',
      SECRET_KEY: randomBytes(48).toString('base64url'),
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: redisPrefix,
      AUTO_MIGRATE: 'true',
      HIBP_API_URL: 'off',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s:\n${output}`)), 30_000);
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        output += `${line}\n`;
        try {
          const record = JSON.parse(line) as { msg?: string; port?: number };
          if (typeof record.port === 'number' && record.msg?.startsWith('Sam listening')) {
            clearTimeout(timer);
            resolve(record.port);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      log('server stopped');
    },
  };
}

// ---------------------------------------------------------------- the real APIs

async function signUp(url: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...user, timezone: timeZone }),
  });
  const body = (await res.json()) as { accessToken?: string };
  if (res.status !== 201 || !body.accessToken) throw new Error(`signup answered ${res.status}: ${JSON.stringify(body)}`);
  return body.accessToken;
}

function connect(url: string, token: string): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('session:ready', () => resolve(socket));
  });
}

async function call<E extends RequestEvent>(socket: ClientSocket, event: E, payload: RequestPayload<E>, timeoutMs = 10_000): Promise<AckData[E]> {
  const res = (await (socket.timeout(timeoutMs) as any).emitWithAck(event, payload)) as Ack<AckData[E]>;
  if (!res.ok) throw new Error(`${event} failed: ${JSON.stringify(res.error)}`);
  return res.data;
}

/** Sends one chat message and waits until the assistant's answer is complete. */
async function say(socket: ClientSocket, content: string, conversationId: string | undefined): Promise<string> {
  const done = new Map<string, string>();
  const waiters = new Map<string, (status: string) => void>();
  const onDone = ({ message }: { message: { id: string; status: string } }) => {
    done.set(message.id, message.status);
    waiters.get(message.id)?.(message.status);
  };
  socket.on('chat:done', onDone);
  try {
    const sent = await call(socket, 'chat:send', conversationId ? { conversationId, content } : { content });
    const status =
      done.get(sent.assistantMessageId) ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to "${content}" in 20 s`)), 20_000);
        waiters.set(sent.assistantMessageId, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
      }));
    if (status !== 'complete') throw new Error(`the answer to "${content}" ended ${status}`);
    return sent.conversationId;
  } finally {
    socket.off('chat:done', onDone);
  }
}

async function fillTheDay(socket: ClientSocket): Promise<void> {
  const ids = new Map<string, string>();
  for (const { key, after, complete, ...fields } of plan) {
    const dependencies = after ? [ids.get(after)!] : [];
    const { task } = await call(socket, 'task:create', { ...fields, dependencies });
    if (key) ids.set(key, task.id);
    if (complete) await call(socket, 'task:complete', { id: task.id });
  }
  for (const conversation of conversations) {
    let id: string | undefined;
    for (const content of conversation.messages) id = await say(socket, content, id);
    await call(socket, 'conversation:rename', { id: id!, title: conversation.title });
  }
}

// ---------------------------------------------------------------- the browser

async function takeScreenshots(url: string): Promise<void> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'sam-screens-'));
  cleanups.push(() => rm(profile, { recursive: true, force: true }));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    baseURL: url,
    viewport,
    colorScheme: 'light',
    locale: 'en-US',
    timezoneId: timeZone,
  });
  cleanups.push(() => context.close());
  const page: Page = context.pages()[0] ?? (await context.newPage());

  await page.goto('/');
  await page.getByRole('tab', { name: 'Log in' }).click();
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByTestId('main-screen').waitFor();
  await page.locator('[data-testid="connection-status"][data-state="live"]').waitFor();

  // The most recent conversation, open; every task in the list.
  const current = conversations.at(-1)!;
  await page.getByTestId('conversation-item').filter({ hasText: current.title }).locator('button.open').click();
  await page.getByTestId('chat-title').filter({ hasText: current.title }).waitFor();
  const answers = page.locator('[data-testid="message"][data-role="assistant"][data-status="complete"]');
  await waitForCount(answers, current.messages.length);
  await waitForCount(page.getByTestId('task-item'), plan.filter((t) => !t.complete).length + 2);
  // Nothing focused, nothing mid-transition, the log scrolled to its end.
  await page.evaluate('document.activeElement?.blur()');
  await page.mouse.move(0, viewport.height - 1);
  await page.waitForTimeout(800);

  await mkdir(outDir, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(300);
    const file = path.join(outDir, `screenshot-${scheme}.png`);
    await page.screenshot({ path: file });
    log(`wrote ${path.relative(repoRoot, file)}`);
  }
}

async function waitForCount(locator: ReturnType<Page['locator']>, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await locator.count()) < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} of ${locator.toString()}, saw ${await locator.count()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------- dates

function calendarDate(date: Date): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date);
}

function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
