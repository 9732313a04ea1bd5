// /debug/health: can this node serve? It cannot when its store is not writable
// (no fill could be spooled) or when it has no trusted keys (no token could be verified);
// either answers 503, as does a node that is draining. A full disk is not that: hits are
// served and misses stream through without being kept, so the node answers 200 'degraded'
// (an orchestrator that replaced it would gain nothing: the disk stays full). Upstream
// results are reported, not judged: a node whose upstreams are down still serves its hits.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diskFullCode } from '../errors/inspect.js';

export interface HealthSources {
  /** A directory on the store's filesystem where a probe file may be written. */
  probeDir: string;
  /** The trusted key set; null when the node verifies no redirect tokens (a pure mirror). */
  keys: { readonly loaded: boolean; readonly size: number } | null;
  upstreams(): Iterable<{
    readonly url: string;
    readonly role: string;
    readonly lastResult: { ok: boolean; at: number; detail: string } | null;
  }>;
}

export type HealthStatus = 'ok' | 'degraded' | 'unavailable';

export interface HealthReport {
  status: 200 | 503;
  body: {
    status: HealthStatus;
    checks: {
      /** `full`: the disk is full; the node serves without caching. */
      store: { ok: boolean; full?: boolean; detail: string; checkedAt: string };
      keys: { ok: boolean; loaded: boolean; count: number };
      draining: boolean;
      upstreams: Array<{ url: string; role: string; ok: boolean | null; at: string | null; detail: string }>;
    };
  };
}

/** A probe result is reused this long, so a scraper polling every second costs one write per window. */
const PROBE_CACHE_MS = 5_000;

export class Health {
  readonly #src: HealthSources;
  readonly #probeFile: string;
  #probe: { at: number; result: Promise<{ ok: boolean; full?: boolean; detail: string }> } | null = null;
  draining = false;

  constructor(src: HealthSources) {
    this.#src = src;
    this.#probeFile = join(src.probeDir, `health-probe-${process.pid}`);
  }

  async report(now = Date.now()): Promise<HealthReport> {
    if (this.#probe === null || now - this.#probe.at >= PROBE_CACHE_MS) {
      this.#probe = { at: now, result: this.#writeProbe() };
    }
    const checkedAt = new Date(this.#probe.at).toISOString();
    const store = { ...(await this.#probe.result), checkedAt };
    const src = this.#src.keys;
    const keys =
      src === null
        ? { ok: true, loaded: false, count: 0 }
        : { ok: src.loaded && src.size > 0, loaded: src.loaded, count: src.size };
    const upstreams = [...this.#src.upstreams()].map((h) => ({
      url: h.url,
      role: h.role,
      ok: h.lastResult?.ok ?? null,
      at: h.lastResult === null ? null : new Date(h.lastResult.at).toISOString(),
      detail: h.lastResult?.detail ?? 'not contacted yet',
    }));
    const ok = store.ok && keys.ok && !this.draining;
    const status = !ok ? 'unavailable' : store.full === true ? 'degraded' : 'ok';
    return { status: ok ? 200 : 503, body: { status, checks: { store, keys, draining: this.draining, upstreams } } };
  }

  /** Writes, then removes, a small file: catches a read-only remount, a full disk, lost permissions. */
  async #writeProbe(): Promise<{ ok: boolean; full?: boolean; detail: string }> {
    try {
      await mkdir(this.#src.probeDir, { recursive: true });
      await writeFile(this.#probeFile, 'ok\n');
      await rm(this.#probeFile, { force: true });
      return { ok: true, detail: 'writable' };
    } catch (err) {
      await rm(this.#probeFile, { force: true }).catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      // Node's fs messages start with their code already ("ENOSPC: no space left on device, …").
      const code = e.code ?? 'error';
      const detail = e.message.startsWith(`${code}:`) ? e.message : `${code}: ${e.message}`;
      if (diskFullCode(err) !== null) {
        return { ok: true, full: true, detail: `${detail} (serving: misses stream through without caching)` };
      }
      return { ok: false, detail };
    }
  }
}
