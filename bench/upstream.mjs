// The fake assistant upstream, in its own process: Sam's own Anthropic-compatible
// endpoint (dist/dev/offline-model/server.js). A request whose last user
// message holds `[bench:<key>]` streams STREAM_CHARS characters at 50 tokens per
// second, 4 characters a token; `onDelta` records when each delta was written
// (epoch ms, sub-ms), which the orchestrator compares with the tabs' receive times;
// `arrivedAt` is when the request arrived, to compare with the tab's send time.
import { createAnthropicCompatibleServer } from '../dist/dev/offline-model/server.js';

const chars = Number(process.env.STREAM_CHARS ?? 600);
const text = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(chars / 27)).slice(0, chars);
const byRequest = new Map(); // requestId -> { key, arrivedAt, writes: [at, cumLen][] , len }

const keyOf = (req) => {
  const msgs = req.params.messages;
  for (let i = msgs.length - 1; i >= 0; i--) {
    const c = msgs[i].content;
    const s = typeof c === 'string' ? c : c.map((b) => b.text ?? '').join('');
    const m = /\[bench:([\w.-]+)\]/.exec(s);
    if (m) return m[1];
  }
  return undefined;
};

const server = await createAnthropicCompatibleServer({
  maxRecordedRequests: 50,
  script: (req) => {
    const key = keyOf(req);
    if (!key) return undefined;
    byRequest.set(req.id, { key, arrivedAt: performance.timeOrigin + performance.now(), writes: [], len: 0 });
    return { kind: 'text', text, chunkSize: 4, delayMs: 1000 / 50 };
  },
  onDelta: (requestId, d) => {
    const r = byRequest.get(requestId);
    if (!r || d.type !== 'text_delta') return;
    r.len += d.text.length;
    r.writes.push(d.at, r.len);
  },
});

process.on('message', (msg) => {
  if (msg?.cmd === 'dump') {
    const out = {};
    for (const r of byRequest.values()) out[r.key] = { arrivedAt: r.arrivedAt, writes: r.writes };
    byRequest.clear();
    process.send({ cmd: 'dump', id: msg.id, streams: out });
  }
});
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
process.send({ cmd: 'listening', url: server.url });
