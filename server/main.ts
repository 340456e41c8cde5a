/** The process: config → deps → app → listen → graceful shutdown. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Sam cannot start. ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  if (config.secretKeyGenerated) {
    logger.warn('SECRET_KEY is not set: using a random key for this process; tokens will not survive a restart');
  }
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  // Loaded once the configuration holds: a bad one fails at once, without loading the whole server first.
  const [{ createDeps }, { createApp }] = await Promise.all([import('./deps.js'), import('./app.js')]);
  const deps = await createDeps(config, logger);
  const app = createApp(deps);
  await new Promise<void>((resolve) => app.server.listen(config.port, resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, environment: config.environment, nodeId: config.nodeId }, `Sam listening on http://localhost:${port}`);

  let stopping = false;
  /** SIGTERM drains: running answers get `drainMs` to finish. SIGINT (a developer's Ctrl-C) gives them none. */
  const shutdown = async (signal: string, drainMs: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs }, 'draining');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, drainMs + config.shutdownTimeoutMs);
    force.unref();
    try {
      await app.drain(Date.now() + drainMs);
      logger.info({ signal }, 'shutting down');
      await app.close();
      await deps.close();
      logger.info('shutdown complete');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM', config.drainTimeoutMs));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
}

main().catch((err: unknown) => {
  process.stderr.write(`Sam failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
