// The search phase (CHAT-11), Sam only: data seeded straight into PostgreSQL, then `search` over the socket at a
// fixed arrival rate (open loop: latency from the scheduled time to the ack), for one user with 100,000 messages
// and 20,000 tasks, and across 1,000 users with a little each. Also the plan the server runs the statement with.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { io } from 'socket.io-client';
import { epochMs, newHist, recordMs, settle, sleep, summary } from './lib.mjs';
import { cpuByRole, cpuSpent, root, seedUsers, startSam, stopNode } from './servers.mjs';

/** A small deterministic PRNG (mulberry32), so that every run searches the same text with the same queries. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The commonest words of English, in order, then made-up words (from syllables) to a vocabulary of 30,000; word
// n is used with weight 1/n (Zipf), as words are in text: "the" is in most messages, most words in few.
const COMMON = `the to and a of I you it is that in for this be on with have my do not can what we are at so me your
  but if will just was get about all like they an or from up out know when one there how would time think need
  let now go make here see some then could good take day work week call meeting email tomorrow today plan list
  should done next new want more back also please thanks sure find help remind project team doc review notes
  friday monday morning send check write update book buy order fix talk ask read call number late soon later
  list idea draft report budget client trip home family dinner lunch doctor school garden car house money`.split(/\s+/);
const SYLLABLES = 'ba be bi bo bu ca ce co cu da de di do du fa fe fi fo ga ge go ha he hi ho ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo ar er in on or an en ul ix ost ing'.split(' ');

export function vocabulary(size, random) {
  const words = [...new Set(COMMON)];
  const seen = new Set(words);
  while (words.length < size) {
    let w = '';
    const n = 2 + Math.floor(random() * 3);
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

/** Draws word ranks (0-based) with weight 1/(rank+1) from `from` on. */
function zipf(size, random, from = 0) {
  const cdf = new Float64Array(size - from);
  let total = 0;
  for (let r = from; r < size; r++) cdf[r - from] = total += 1 / (r + 1);
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo + from;
  };
}

function textMaker(words, random) {
  const draw = zipf(words.length, random);
  return (min, max) => {
    const n = min + Math.floor(random() * (max - min + 1));
    const out = [];
    for (let i = 0; i < n; i++) out.push(words[draw()]);
    if (out.length === 0) return '';
    out[0] = out[0][0].toUpperCase() + out[0].slice(1);
    return `${out.join(' ')}.`;
  };
}

const DAY = 86_400_000;

/** Each table's insert: the columns that vary from row to row come as arrays (unnest), the rest are constants. */
const inserts = {
  conversations: `insert into conversations (id, user_id, title, created_at, updated_at)
    select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[])`,
  messages: `insert into messages (id, conversation_id, user_id, role, content, created_at, updated_at, status, tool_calls)
    select *, 'complete', '[]'::jsonb from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])`,
  tasks: `insert into tasks (id, user_id, title, description, intensity, status, created_at, updated_at, completed_at, deleted_at, dependencies, version, seq)
    select *, '{}'::uuid[], 1, 1 from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])`,
};

/**
 * Inserts, for each user, `conversations` conversations of `perConversation` messages (user and assistant turns,
 * 4–25 and 15–90 words) and `tasks` tasks (a title of 2–7 words, a description of 0–40, 40 % empty; a tenth
 * completed, a twentieth in the trash), spread over the last year. Rows go in batches of 5,000, through the
 * generated `search` columns and their GIN indexes as the server's own writes do.
 */
async function seedText(client, users, { conversations, perConversation, tasks }, make, random) {
  const now = Date.now();
  const rows = { conversations: 0, messages: 0, tasks: 0 };
  const batches = { conversations: [[], [], [], [], []], messages: [[], [], [], [], [], [], []], tasks: [[], [], [], [], [], [], [], [], [], []] };
  const flush = async (table) => {
    const batch = batches[table];
    if (batch[0].length === 0) return;
    await client.query(inserts[table], batch);
    rows[table] += batch[0].length;
    for (const column of batch) column.length = 0;
  };
  const add = async (table, ...values) => {
    values.forEach((v, i) => batches[table][i].push(v));
    if (batches[table][0].length >= 5_000) {
      // A conversation's messages need it first.
      if (table === 'messages') await flush('conversations');
      await flush(table);
    }
  };
  for (const userId of users) {
    for (let c = 0; c < conversations; c++) {
      const id = randomUUID();
      const start = now - Math.floor(random() * 365 * DAY);
      const firstText = make(4, 25);
      await add('conversations', id, userId, firstText.slice(0, 80), new Date(start), new Date(start + perConversation * 60_000));
      for (let m = 0; m < perConversation; m++) {
        const at = new Date(start + m * 60_000);
        const role = m % 2 === 0 ? 'user' : 'assistant';
        await add('messages', randomUUID(), id, userId, role, m === 0 ? firstText : role === 'user' ? make(4, 25) : make(15, 90), at, at);
      }
    }
    for (let t = 0; t < tasks; t++) {
      const created = new Date(now - Math.floor(random() * 365 * DAY));
      const r = random();
      const status = r < 0.05 ? 'deleted' : r < 0.15 ? 'completed' : r < 0.3 ? 'in_progress' : 'not_started';
      const description = random() < 0.4 ? '' : make(3, 40);
      await add('tasks', randomUUID(), userId, make(2, 7).slice(0, -1), description, 1 + Math.floor(random() * 5), status, created, created, status === 'completed' ? created : null, status === 'deleted' ? created : null);
    }
  }
  await flush('conversations');
  await flush('messages');
  await flush('tasks');
  return rows;
}

/**
 * Seeds one heavy user's and `many` light users' text (users from `seedUsers`), then VACUUM ANALYZE, as autovacuum
 * would leave the tables: statistics, and the GIN indexes' pending lists (fastupdate) merged.
 */
export async function seedSearch(dbUrl, { heavy, light }, { one, many }, log) {
  const random = prng(21);
  const words = vocabulary(30_000, random);
  const make = textMaker(words, random);
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    let t = Date.now();
    const a = await seedText(client, [one.userId], heavy, make, random);
    log(`  seeded the one user: ${a.messages} messages in ${a.conversations} conversations, ${a.tasks} tasks in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    const b = await seedText(client, many.map((u) => u.userId), light, make, random);
    log(`  seeded ${many.length} users: ${b.messages} messages in ${b.conversations} conversations, ${b.tasks} tasks in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    await client.query('vacuum analyze tasks, messages, conversations');
    log(`  vacuum analyze in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const [{ size }] = (await client.query(`select pg_size_pretty(sum(pg_relation_size(c.oid))) as size from pg_class c where relname in ('tasks_search_index', 'messages_search_index', 'conversations_search_index')`)).rows;
    return { words, oneUser: a, manyUsers: b, indexSize: size };
  } finally {
    await client.end();
  }
}

/**
 * Queries as people type them in a palette: one word (two in three) or two, each drawn by its frequency in the
 * text but without the 100 commonest words (nobody searches for "the"); `common` draws single words among the 20
 * commonest instead, each of which is in a large share of all rows: the worst case.
 */
export function queryMaker(words, seed, { common = false } = {}) {
  const random = prng(seed);
  const draw = common ? () => Math.floor(random() * 20) : zipf(words.length, random, 100);
  return () => (common || random() < 2 / 3 ? words[draw()] : `${words[draw()]} ${words[draw()]}`);
}

function connectTab(url, token) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token }, timeout: 10_000 });
    s.once('session:ready', () => resolve(s));
    s.once('connect_error', reject);
  });
}

/** Connects one tab per user, `rate` per second. */
export async function connectTabs(url, users, rate) {
  const tabs = [];
  const started = performance.now();
  for (let i = 0; i < users.length; i += 50) {
    const wait = started + (i / rate) * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    tabs.push(...(await Promise.all(users.slice(i, i + 50).map((u) => connectTab(url, u.token)))));
  }
  return tabs;
}

/**
 * `search` at `rate` per second for `ms`, each from a tab picked in turn, with a query from `next()`; latency from
 * the scheduled time to the ack. Returns the latencies, errors, hits per search and the CPU spent per search.
 */
export async function searchLoad(tabs, { rate, ms, next }) {
  const hist = newHist();
  const count = Math.floor((rate * ms) / 1000);
  const errors = {};
  let hits = 0;
  let done = 0;
  const cpu0 = cpuByRole();
  const t0 = epochMs();
  await new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      const at = t0 + (i * 1000) / rate;
      const query = next();
      const tab = tabs[i % tabs.length];
      setTimeout(() => {
        tab.timeout(30_000).emit('search', { query }, (err, ack) => {
          if (err || !ack?.ok) {
            const code = err ? 'timeout' : ack?.error?.code ?? 'bad ack';
            errors[code] = (errors[code] ?? 0) + 1;
          } else {
            recordMs(hist, epochMs() - at);
            hits += ack.data.results.length;
          }
          if (++done === count) resolve();
        });
      }, Math.max(0, at - epochMs()));
    }
  });
  const spent = cpuSpent(cpu0, cpuByRole());
  const per = (role) => Math.round((1000 * spent[role]) / count) / 1000;
  return { count, errors, latencyMs: summary(hist), hitsPerSearch: Math.round((10 * hits) / count) / 10, cpuMsPerSearch: { server: per('server'), postgres: per('postgres') } };
}

/** The generic plan of the server's own search statement (its repository, from dist/), and the indexes it reads. */
export async function searchPlan(dbUrl, userId, query) {
  const dist = (p) => pathToFileURL(path.join(root, 'dist/server', p)).href;
  const { createPostgres } = await import(dist('db/postgres.js'));
  const { createSearchRepository } = await import(dist('features/search/search.repository.js'));
  const sql = createPostgres(dbUrl, { max: 1, applicationName: 'sam-bench-explain' });
  try {
    const plan = await createSearchRepository(sql).explain(userId, { query, kinds: ['task', 'message', 'conversation'], limit: 20 });
    const indexes = [...new Set([...plan.matchAll(/(?:Index Scan on|Index Scan using|Index Only Scan using) (\w+)/g)].map((m) => m[1]))];
    return { plan, indexes };
  } finally {
    await sql.end();
  }
}

/**
 * The phase: a Sam node of its own on the bench's database, 1 + `many` users inserted as `seedUsers` does (they
 * never log in: no password), their text, the plan, then the three loads, each after a short unmeasured warm-up
 * and a quiet machine.
 */
export async function searchPhase(ident, { port, upstreamUrl, sizes, loads, settleMaxMs, log }) {
  const dbUrl = `postgres://postgres@127.0.0.1:5432/${ident.dbName}`;
  const node = await startSam(ident, { port, nodeId: 'sam-search', upstreamUrl });
  const tabs = [];
  try {
    const users = await seedUsers(ident, 1 + sizes.users, '!no-login', { emailPrefix: 'bench-search-' });
    const [one, ...many] = users;
    const seeded = await seedSearch(dbUrl, { heavy: sizes.heavy, light: sizes.light }, { one, many }, log);
    const typical = queryMaker(seeded.words, 7);
    const explained = await searchPlan(dbUrl, one.userId, typical());
    log(`  plan for the one user: ${explained.indexes.join(', ')}`);
    const oneTabs = await connectTabs(node.url, [one], 100);
    const manyTabs = await connectTabs(node.url, many, 500);
    tabs.push(...oneTabs, ...manyTabs);
    const run = async (name, tabsOf, load) => {
      await searchLoad(tabsOf, { rate: load.rate, ms: Math.min(2_000, load.ms), next: queryMaker(seeded.words, 99, load) });
      const quiet = await settle({ maxMs: settleMaxMs });
      const r = await searchLoad(tabsOf, { ...load, next: queryMaker(seeded.words, load.seed, load) });
      log(`  ${name}: ${r.count} searches at ${load.rate}/s: p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms, ${r.hitsPerSearch} hits each, CPU per search server ${r.cpuMsPerSearch.server} ms, PostgreSQL ${r.cpuMsPerSearch.postgres} ms${Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''} (machine ${Math.round(quiet.busy * 100)}% busy before)`);
      return r;
    };
    const oneUser = await run('the one user', oneTabs, loads.typical);
    const manyUsers = await run(`across ${many.length} users`, manyTabs, loads.typical);
    const commonWords = await run('the one user, the 20 commonest words', oneTabs, { ...loads.common, common: true });
    return { sizes, seeded: { oneUser: seeded.oneUser, manyUsers: seeded.manyUsers, indexSize: seeded.indexSize }, plan: explained, oneUser, manyUsers, commonWords };
  } finally {
    for (const t of tabs) t.disconnect();
    await stopNode(node);
  }
}

/** The phase's lines of the report. */
export function searchReport(s, machine) {
  const row = (name, r) => `| ${name} | ${r.count} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.latencyMs.max} | ${r.hitsPerSearch} | ${r.cpuMsPerSearch.server} / ${r.cpuMsPerSearch.postgres} | ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0'} |`;
  return [
    `### search (Sam only) — ${machine.cpus} cores, ${machine.model}`,
    '',
    `One user with ${s.seeded.oneUser.messages.toLocaleString('en-US')} messages and ${s.seeded.oneUser.tasks.toLocaleString('en-US')} tasks; ${s.sizes.users.toLocaleString('en-US')} users with ${s.seeded.manyUsers.messages.toLocaleString('en-US')} messages and ${s.seeded.manyUsers.tasks.toLocaleString('en-US')} tasks in all; GIN indexes ${s.seeded.indexSize}. The plan reads ${s.plan.indexes.map((i) => `\`${i}\``).join(', ')}.`,
    '',
    '| searches | count | p50 (ms) | p99 (ms) | max (ms) | hits each | CPU per search, server / PostgreSQL (ms) | errors |',
    '|---|---:|---:|---:|---:|---:|---|---|',
    row('the one user', s.oneUser),
    row(`across ${s.sizes.users.toLocaleString('en-US')} users`, s.manyUsers),
    row('the one user, the 20 commonest words', s.commonWords),
  ];
}
