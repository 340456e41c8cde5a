// The bare baseline: a Socket.IO 4.8 server doing the same socket work as Sam
// (WebSocket only, same engine options, a room per user, the same events answered
// with the same shapes and payload sizes) with no auth check, no database, no
// rate limiting. The token's payload is decoded (not verified) only to learn the
// user and session ids. With BARE_REDIS_URL it uses the Redis adapter, as Sam does.
//
// Env: PORT, NODE_ID, BARE_REDIS_URL?, BARE_REDIS_PREFIX?, UPSTREAM_URL? (fake Anthropic endpoint)
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 0);
const nodeId = process.env.NODE_ID ?? `bare:${port}`;
const upstreamUrl = process.env.UPSTREAM_URL;

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(server, {
  path: '/socket.io',
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 256 * 1024,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  connectTimeout: 10_000,
  perMessageDeflate: false,
  httpCompression: false,
});

let redisClients = [];
if (process.env.BARE_REDIS_URL) {
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const { Redis } = await import('ioredis');
  const pub = new Redis(process.env.BARE_REDIS_URL);
  const sub = pub.duplicate();
  redisClients = [pub, sub];
  io.adapter(createAdapter(pub, sub, { key: `${process.env.BARE_REDIS_PREFIX ?? 'bare:'}socket.io`, requestsTimeout: 3_000 }));
}

io.engine.on('connection', (rawSocket) => {
  rawSocket.request = null; // as Sam does
});

const iso = () => new Date().toISOString();
const users = new Map(); // userId -> { seq, tasks: Map }

function userState(userId) {
  let u = users.get(userId);
  if (!u) {
    u = { seq: 1, tasks: new Map() };
    users.set(userId, u);
  }
  return u;
}

function newTask(id, title) {
  const now = iso();
  return {
    id, title, description: '', deadline: null, intensity: 3, status: 'not_started', project: null, waitingOn: null,
    dependencies: [], recurrence: null, version: 1, seq: 1, createdAt: now, updatedAt: now, completedAt: null, deletedAt: null,
  };
}

io.use((socket, next) => {
  try {
    const token = socket.handshake.auth?.token;
    const claims = JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString('utf8'));
    socket.data = { userId: claims.sub, sessionId: claims.sid, role: claims.role, exp: claims.exp };
    next();
  } catch {
    next(new Error('UNAUTHENTICATED'));
  }
});

io.on('connection', (socket) => {
  const { userId, sessionId } = socket.data;
  socket.join([`user:${userId}`, `session:${sessionId}`]);
  const state = userState(userId);
  socket.emit('session:ready', {
    user: { id: userId, email: `bench-${userId.slice(0, 8)}@bench.invalid`, fullName: '', timezone: 'UTC', role: 'user', createdAt: iso() },
    sessionId,
    tokenExpiresAt: new Date(socket.data.exp * 1000).toISOString(),
    taskSeq: state.seq,
    nodeId,
    serverTime: iso(),
  });

  socket.on('task:create', (payload, ack) => {
    if (typeof ack !== 'function') return;
    const task = newTask(payload?.id ?? randomUUID(), String(payload?.title ?? ''));
    task.seq = ++state.seq;
    state.tasks.set(task.id, task);
    ack({ ok: true, data: { task } });
    io.to(`user:${userId}`).emit('task:changed', { seq: task.seq, task });
  });

  socket.on('task:update', (payload, ack) => {
    if (typeof ack !== 'function') return;
    const id = payload?.id;
    let task = state.tasks.get(id);
    if (!task) {
      task = newTask(id, '');
      state.tasks.set(id, task);
    }
    if (typeof payload?.patch?.title === 'string') task.title = payload.patch.title.trim();
    task.version += 1;
    task.seq = ++state.seq;
    task.updatedAt = iso();
    ack({ ok: true, data: { task } });
    io.to(`user:${userId}`).emit('task:changed', { seq: task.seq, task });
  });

  socket.on('chat:send', (payload, ack) => {
    if (typeof ack !== 'function') return;
    const conversationId = randomUUID();
    const assistantMessageId = randomUUID();
    const message = (id, role, content, status) => ({
      id, conversationId, role, content, status, lastSeq: null, toolCalls: [], usage: null, model: null, error: null, createdAt: iso(),
    });
    const userMessage = message(randomUUID(), 'user', String(payload?.content ?? ''), 'complete');
    ack({ ok: true, data: { conversationId, userMessage, assistantMessageId } });
    const room = `user:${userId}`;
    io.to(room).emit('chat:message', { message: userMessage });
    io.to(room).emit('chat:message', { message: message(assistantMessageId, 'assistant', '', 'streaming') });
    void relay(room, conversationId, assistantMessageId, userMessage.content).then((content) =>
      io.to(room).emit('chat:done', { conversationId, message: message(assistantMessageId, 'assistant', content, 'complete') }),
    );
  });
});

// As Sam's relay (server/features/chat/assistant.ts): the first delta goes out at once, the
// rest wait for one shared tick every COALESCE_MS that flushes every stream with text waiting
// (in one go, where Sam flushes in slices: bench/README.md, "Delta coalescing").
const COALESCE_MS = 25;
const waiting = new Set();
let tick;
function scheduleFlush(flush) {
  waiting.add(flush);
  tick ??= setTimeout(() => {
    tick = undefined;
    const flushes = [...waiting];
    waiting.clear();
    for (const f of flushes) f();
  }, COALESCE_MS);
}

/** Streams the upstream SSE, coalescing deltas as Sam does, and broadcasts them. */
async function relay(room, conversationId, messageId, content) {
  let all = '';
  if (!upstreamUrl) return all;
  let pending = '';
  let seq = 0;
  const flush = () => {
    waiting.delete(flush);
    if (!pending) return;
    const text = pending;
    pending = '';
    io.to(room).emit('chat:delta', { conversationId, messageId, seq: seq++, text });
  };
  try {
    const res = await fetch(`${upstreamUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'bare', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'bench', max_tokens: 4096, stream: true, messages: [{ role: 'user', content }] }),
    });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const line = block.split('\n').find((l) => l.startsWith('data:'));
        if (!line) continue;
        const ev = JSON.parse(line.slice(5));
        if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta' && ev.delta.text) {
          pending += ev.delta.text;
          all += ev.delta.text;
          if (seq === 0) flush();
          else scheduleFlush(flush);
        }
      }
    }
  } catch {
    // a failed stream just ends
  }
  flush();
  return all;
}

process.on('message', (msg) => {
  if (msg?.cmd === 'mem') {
    globalThis.gc?.();
    const m = process.memoryUsage();
    process.send({ cmd: 'mem', rss: m.rss, heapUsed: m.heapUsed, sockets: io.of('/').sockets.size });
  }
});

const shutdown = () => {
  io.local.disconnectSockets(true);
  io.close(() => {
    for (const c of redisClients) c.disconnect();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 3_000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(port, '127.0.0.1', () => {
  process.send?.({ cmd: 'listening', port: server.address().port });
});
