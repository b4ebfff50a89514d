// omniseg serve --model <dir> [--referrer <dir>] [--host h] [--port p] [--cache-mb m] [--max-queue q] ...
// Listens at once (/readyz answers 503 while the model loads); exits 1 when the model cannot be
// loaded; on SIGINT / SIGTERM shuts down gracefully and returns (exit code 0).
import type { ServeCommand } from './args.js';
import type { CliIO } from './io.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export async function runServe(args: ServeCommand, io: CliIO): Promise<void> {
  // Loaded here, not at start-up, so that the other commands do not load Fastify.
  const { createServer } = await import('../server/app.js');
  const server = await createServer({
    model: args.model,
    device: args.device,
    precision: args.precision,
    ...(args.cpuMatmul === undefined ? {} : { cpuMatmul: args.cpuMatmul }),
    ...(args.threads === undefined ? {} : { threads: args.threads }),
    ...(args.cacheMb === undefined ? {} : { cacheBytes: Math.floor(args.cacheMb * 1024 * 1024) }),
    ...(args.heatmapCacheMb === undefined ? {} : { heatmapCacheBytes: Math.floor(args.heatmapCacheMb * 1024 * 1024) }),
    ...(args.maxQueue === undefined ? {} : { maxQueue: args.maxQueue }),
    ...(args.maxBatch === undefined ? {} : { maxBatch: args.maxBatch }),
    ...(args.batchDelayMs === undefined ? {} : { batchDelayMs: args.batchDelayMs }),
    ...(args.timeoutMs === undefined ? {} : { requestTimeoutMs: args.timeoutMs }),
    ...(args.referrer === undefined ? {} : { referrer: args.referrer }),
    logger: { level: 'info', stream: { write: (line: string) => io.stdout(line) } },
  });
  const log = server.app.log;

  let stop!: (signal: string) => void;
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => stop(signal);
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  try {
    await server.listen({ host: args.host, port: args.port });
    const outcome = await Promise.race([server.loaded.then(() => 'loaded' as const), stopped]);
    if (outcome === 'loaded') {
      const budgets = { cacheBytes: server.cache.maxBytes, heatmapCacheBytes: server.heatmapCache.maxBytes };
      log.info({ model: args.model, referrer: args.referrer, ...budgets }, 'model loaded; ready');
      const signal = await stopped;
      log.info({ signal }, 'shutting down: finishing the requests in flight');
    }
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    await server.close();
  }
  log.info('stopped');
}
