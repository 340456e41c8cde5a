import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { poolSize } from './thread-priority.js';

// A fresh process with V8's pool as Sam runs it (the compiled module: `npm test` builds first).
const compiled = path.resolve(import.meta.dirname, '../dist/server/thread-priority.js');
const script = `
import fs from 'node:fs';
import { pbkdf2 } from 'node:crypto';
const { lowerPoolThreads } = await import(process.argv[1]);
const stat = (tid) => fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ');
const cpu = (tid) => Number(stat(tid)[11]) + Number(stat(tid)[12]);
const pool = await lowerPoolThreads();
const all = fs.readdirSync('/proc/self/task').map(Number);
const before = new Map(all.map((tid) => [tid, cpu(tid)]));
// CPU-heavy work on the pool, one job per pool thread, while this thread waits
await Promise.all(pool.map(() => new Promise((resolve) => pbkdf2('password', 'salt', 400000, 32, 'sha256', resolve))));
const used = (tids) => tids.reduce((sum, tid) => sum + cpu(tid) - before.get(tid), 0);
const others = all.filter((tid) => tid !== process.pid && !pool.includes(tid));
console.log(JSON.stringify({ pool: pool.length, poolNice: pool.map((t) => Number(stat(t)[16])), otherNice: all.filter((t) => !pool.includes(t)).map((t) => Number(stat(t)[16])), poolTicks: used(pool), otherTicks: used(others) }));
`;

describe.runIf(process.platform === 'linux')('thread priority', () => {
  it("gives libuv's pool threads (where argon2 hashes) nice 19 and leaves the main thread and V8's alone", () => {
    const out = JSON.parse(execFileSync(process.execPath, ['--v8-pool-size=1', '--input-type=module', '-e', script, compiled], { encoding: 'utf8' })) as {
      pool: number;
      poolNice: number[];
      otherNice: number[];
      poolTicks: number;
      otherTicks: number;
    };
    expect(out.pool).toBe(4);
    expect(out.poolNice).toEqual([19, 19, 19, 19]);
    expect(out.otherNice.every((nice) => nice === 0)).toBe(true);
    // the pool's jobs ran on the threads found (CPU ticks of 10 ms), none on the others
    expect(out.poolTicks).toBeGreaterThan(20);
    expect(out.otherTicks).toBeLessThanOrEqual(2);
  });

  it('reads the pool size as libuv does', () => {
    expect(poolSize({})).toBe(4);
    expect(poolSize({ UV_THREADPOOL_SIZE: '8' })).toBe(8);
    expect(poolSize({ UV_THREADPOOL_SIZE: '0' })).toBe(4);
    expect(poolSize({ UV_THREADPOOL_SIZE: '5000' })).toBe(1024);
  });
});
