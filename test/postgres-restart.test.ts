/** The pool survives a PostgreSQL restart: requests fail briefly (never 500), then work again. */
import { describe, expect, it } from 'vitest';
import { productionEnv, strongPassword, uniqueEmail } from './support/env.js';
import { startTestApp } from './support/app.js';
import { RestClient } from './support/http.js';
import { migratedDatabase, startOwnPostgres } from './support/postgres-server.js';

describe('PostgreSQL restart', () => {
  it('after a restart the same process serves health, signups and token checks again; nothing answered 500', async () => {
    await using pg = await startOwnPostgres();
    const databaseUrl = await migratedDatabase(pg.url('sam'));

    await using app = await startTestApp(productionEnv({ DATABASE_URL: databaseUrl }));
    const signup = () => new RestClient(app.url).post('/api/v1/auth/signup', { email: uniqueEmail(), password: strongPassword() });
    const first = await signup();
    expect(first.status).toBe(201);

    await pg.restart();
    const statuses: number[] = [];
    const deadline = Date.now() + 15_000;
    let health = 0;
    while (Date.now() < deadline) {
      health = (await new RestClient(app.url).get('/health')).status;
      statuses.push(health);
      if (health === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(health).toBe(200);
    const again = await signup();
    statuses.push(again.status);
    expect(again.status).toBe(201);
    await expect(app.deps.auth.authenticate(first.body.accessToken)).resolves.toMatchObject({ sub: first.body.user.id });
    expect(statuses).not.toContain(500);
  }, 60_000);
});
