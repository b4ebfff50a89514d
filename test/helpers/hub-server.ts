// A local stand-in for the Hugging Face Hub (node:http): serves files at
// /<repo>/resolve/<revision>/<path>, honours Range requests (206), and injects the faults the
// downloader must survive: a connection dropped mid-body, a corrupted body, a redirect (as the
// Hub's for LFS files), a server that ignores Range, and 404s for anything it does not have.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface HubRequest {
  path: string;
  range: string | undefined;
  status: number;
}

export interface HubServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Files by URL path, e.g. "/org/repo/resolve/<rev>/model.safetensors". */
  files: Map<string, Buffer>;
  requests: HubRequest[];
  /** Paths whose next GET sends half the body and then destroys the socket (once each). */
  dropOnce: Set<string>;
  /** Paths served with one byte flipped. */
  corrupt: Set<string>;
  /** Paths answered with a 302 to /cdn/<path> (which serves the same bytes). */
  redirect: Set<string>;
  /** Answer Range requests with the whole file (200), as a server without range support. */
  ignoreRange: boolean;
  /** Delay before each response, ms. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startHubServer(): Promise<HubServer> {
  const hub: Omit<HubServer, 'url' | 'close'> = {
    files: new Map(),
    requests: [],
    dropOnce: new Set(),
    corrupt: new Set(),
    redirect: new Set(),
    ignoreRange: false,
    delayMs: 0,
  };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const range = req.headers.range;
    const reply = (status: number) => {
      hub.requests.push({ path: url, range, status });
      res.statusCode = status;
    };
    setTimeout(() => {
      if (hub.redirect.has(url)) {
        reply(302);
        res.setHeader('location', `/cdn${url}`);
        return res.end();
      }
      const key = url.startsWith('/cdn/') ? url.slice('/cdn'.length) : url;
      let body = hub.files.get(key);
      if (body === undefined) {
        reply(404);
        return res.end('Entry not found');
      }
      if (hub.corrupt.has(key)) {
        body = Buffer.from(body);
        body[body.length >> 1] ^= 0xff;
      }
      let start = 0;
      const match = range === undefined || hub.ignoreRange ? null : /^bytes=(\d+)-$/.exec(range);
      if (match !== null) {
        start = Number(match[1]);
        if (start >= body.length) {
          reply(416);
          res.setHeader('content-range', `bytes */${body.length}`);
          return res.end();
        }
        reply(206);
        res.setHeader('content-range', `bytes ${start}-${body.length - 1}/${body.length}`);
      } else {
        reply(200);
      }
      const rest = body.subarray(start);
      res.setHeader('content-length', rest.length);
      if (hub.dropOnce.delete(key)) {
        res.write(rest.subarray(0, rest.length >> 1), () => res.socket?.destroy());
        return;
      }
      res.end(rest);
    }, hub.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(hub, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Deterministic pseudo-random bytes (a fixture large enough to be sent in several chunks). */
export function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export interface TestModel {
  id: string;
  family: 'sam' | 'clipseg';
  repo: string;
  revision: string;
  files: Record<string, Buffer>;
  /** Paths listed with sha256 null. */
  unverified?: string[];
  /** Files listed with a null size. */
  unsized?: string[];
}

/**
 * A temporary directory with a registry file (OMNISEG_REGISTRY) of `models`, whose files the
 * hub serves; and a cache directory (OMNISEG_CACHE) inside it.
 */
export async function hubFixture(hub: HubServer, models: TestModel[]) {
  const root = await mkdtemp(path.join(tmpdir(), 'omniseg-hub-'));
  const registry = path.join(root, 'registry.json');
  const entries = models.map((m) => {
    for (const [file, data] of Object.entries(m.files)) hub.files.set(`/${m.repo}/resolve/${m.revision}/${file}`, data);
    return {
      id: m.id,
      family: m.family,
      architecture: 'test',
      repo: m.repo,
      revision: m.revision,
      license: 'apache-2.0',
      files: Object.entries(m.files).map(([file, data]) => ({
        path: file,
        size: m.unsized?.includes(file) ? null : data.length,
        sha256: m.unverified?.includes(file) ? null : sha256(data),
      })),
    };
  });
  await writeFile(registry, JSON.stringify({ models: entries }));
  const cache = path.join(root, 'cache');
  return {
    root,
    registry,
    cache,
    env: { OMNISEG_REGISTRY: registry, OMNISEG_CACHE: cache, OMNISEG_ENDPOINT: hub.url } as Record<string, string>,
    /** The URL path the hub serves a model file at. */
    urlPath: (m: TestModel, file: string) => `/${m.repo}/resolve/${m.revision}/${file}`,
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

/** The files of a committed fixture model directory (test/fixtures/<name>/model). */
export async function fixtureFiles(dir: string, names: string[]): Promise<Record<string, Buffer>> {
  const entries = await Promise.all(names.map(async (n) => [n, await readFile(path.join(dir, n))] as const));
  return Object.fromEntries(entries);
}
