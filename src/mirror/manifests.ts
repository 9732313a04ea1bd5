// Manifests through the mirror. By digest: immutable, fetched once, verified against the
// digest, then served from the store to every client of a repository the upstream confirmed
// it in. By tag: served from the store while fresh (`tagttl`), then revalidated with one
// upstream HEAD (HEADs do not count against Docker Hub's pull limit; a GET follows only when
// the tag moved). Concurrent requests for one tag or digest share one upstream exchange.
// When the upstream cannot answer (unreachable, timeout, 5xx, 429), the last known tag is
// served with a Warning; a 404 from a reachable upstream means the tag is gone.
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/types.js';
import { RegistryError, isRegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import { relayedError } from '../upstream/response.js';
import { parseDigest, type Digest } from '../store/digest.js';
import { discardBody, type UpstreamResponse } from '../upstream/chain.js';
import type { ClaimDir } from './claims.js';
import { ManifestContent, readManifestBody } from './content.js';
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, UPSTREAM_ACCEPT, mediaTypeOf } from './media.js';
import { fileKey, type RepoRecords, type TagRecord } from './records.js';
import { SingleFlight } from './single-flight.js';
import type { MirrorUpstream } from './upstream.js';

export interface MirrorParts {
  readonly config: MirrorConfig;
  /** Collapse across the processes of the node (claims.ts). */
  readonly claims: ClaimDir;
  readonly upstream: MirrorUpstream;
  readonly records: RepoRecords;
  readonly content: ManifestContent;
  readonly log: Logger;
  readonly now: () => number;
}

/** How a manifest was found, for the request's log line. */
export type ManifestOutcome = 'hit' | 'revalidated' | 'miss' | 'joined' | 'stale';

export interface FoundManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly outcome: ManifestOutcome;
}

const KNOWN_TYPES = new Set([DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX]);

/** Failures that make a stale tag better than no answer (the stale-if-error list). */
export function isOutage(err: unknown): boolean {
  return isRegistryError(err) && (err.code === 'UNAVAILABLE' || err.code === 'TOOMANYREQUESTS');
}

export class ManifestSource {
  readonly #m: MirrorParts;
  readonly #tags = new SingleFlight<FoundManifest>();
  readonly #digests = new SingleFlight<FoundManifest>();

  constructor(parts: MirrorParts) {
    this.#m = parts;
  }

  async byTag(repo: string, tag: string, via: string | undefined): Promise<FoundManifest> {
    // Fresh in memory; else perhaps fresh on disk (another process of the node checked it).
    const asked = this.#m.now();
    const fresh = (await this.#freshTag(repo, tag, false)) ?? (await this.#freshTag(repo, tag, true));
    if (fresh !== null) return fresh;
    const key = `${repo}:${tag}`;
    const flight = this.#tags.run(key, () =>
      this.#m.claims.run(
        `tag ${this.#m.config.registry} ${key}`,
        async () => this.#revalidate(repo, tag, await this.#m.records.tag(repo, tag, true), via),
        async () => {
          // Checked upstream by another process since this request came: its answer is ours.
          const left = await this.#freshTag(repo, tag, true, asked);
          return left === null ? null : { ...left, outcome: 'joined' };
        },
      ),
    );
    const found = await flight.promise;
    return flight.joined ? { ...found, outcome: found.outcome === 'stale' ? 'stale' : 'joined' } : found;
  }

  /**
   * The tag's manifest when it was checked upstream within tagttl (or at `since` or later)
   * and its bytes are here.
   */
  async #freshTag(repo: string, tag: string, reread: boolean, since?: number): Promise<FoundManifest | null> {
    const { records, content, config } = this.#m;
    const known = await records.tag(repo, tag, reread);
    const digest = known === null ? null : safeDigest(known.digest);
    if (known === null || digest === null) return null;
    const fresh = this.#m.now() - known.checkedAt < config.tagTtlMs;
    if (!fresh && (since === undefined || known.checkedAt < since)) return null;
    const bytes = await content.read(digest, true);
    if (bytes === null) return null;
    records.touch('tags', repo, tag);
    return { digest, mediaType: known.mediaType, bytes, outcome: 'hit' };
  }

  async byDigest(repo: string, digest: Digest, via: string | undefined): Promise<FoundManifest> {
    const { records, content } = this.#m;
    const rec = await records.manifest(repo, digest);
    if (rec !== null) {
      const bytes = await content.read(digest);
      if (bytes !== null) {
        records.touch('manifests', repo, fileKey(digest));
        return { digest, mediaType: rec.mediaType, bytes, outcome: 'hit' };
      }
    }
    const key = `${repo}@${digest.value}`;
    const flight = this.#digests.run(key, () =>
      this.#m.claims.run(
        `digest ${this.#m.config.registry} ${key}`,
        () => this.#fetchDigest(repo, digest, via),
        async () => {
          // Another process fetched (or confirmed) it: its record and bytes are on disk now.
          const left = await records.manifest(repo, digest);
          const bytes = left === null ? null : await content.read(digest, true);
          return left === null || bytes === null
            ? null
            : { digest, mediaType: left.mediaType, bytes, outcome: 'joined' };
        },
      ),
    );
    const found = await flight.promise;
    return flight.joined ? { ...found, outcome: 'joined' } : found;
  }

  async #revalidate(
    repo: string,
    tag: string,
    known: TagRecord | null,
    via: string | undefined,
  ): Promise<FoundManifest> {
    const knownDigest = known === null ? null : safeDigest(known.digest);
    if (known === null || knownDigest === null || !(await this.#m.content.has(knownDigest))) {
      return this.#getTag(repo, tag, known, via);
    }
    // Right after failures the upstream is in back-off: the last known tag at once, no wait.
    if (this.#m.upstream.host.penalised)
      return this.#stale(repo, tag, known, 'the upstream is in back-off after failures');
    let res: UpstreamResponse;
    try {
      res = await this.#ask('HEAD', repo, tag, via);
    } catch (err) {
      if (isOutage(err)) return this.#stale(repo, tag, known, err);
      throw err;
    }
    discardBody(res.body);
    if (res.statusCode === 404) return this.#gone(repo, tag);
    if (headRefused(res.statusCode)) return this.#getTag(repo, tag, known, via);
    if (res.statusCode !== 200) throw await relayedError(res);
    const now = header(res, 'docker-content-digest');
    if (now === known.digest) {
      await this.#m.records.setTag(repo, tag, known);
      const bytes = await this.#m.content.read(knownDigest, true);
      if (bytes !== null) return { digest: knownDigest, mediaType: known.mediaType, bytes, outcome: 'revalidated' };
    }
    const moved = now === undefined ? null : safeDigest(now);
    if (moved === null) return this.#getTag(repo, tag, known, via);
    try {
      const found = await this.#fetchDigest(repo, moved, via);
      await this.#m.records.setTag(repo, tag, {
        digest: moved.value,
        mediaType: found.mediaType,
        size: found.bytes.length,
      });
      return { ...found, outcome: 'miss' };
    } catch (err) {
      if (isOutage(err)) return this.#stale(repo, tag, known, err);
      throw err;
    }
  }

  /** GET by tag: the first pull of a tag, or one whose stored bytes are gone. */
  async #getTag(repo: string, tag: string, known: TagRecord | null, via: string | undefined): Promise<FoundManifest> {
    let res: UpstreamResponse;
    try {
      res = await this.#ask('GET', repo, tag, via);
    } catch (err) {
      if (known !== null && isOutage(err)) return this.#stale(repo, tag, known, err);
      throw err;
    }
    if (res.statusCode === 404) {
      discardBody(res.body);
      return this.#gone(repo, tag);
    }
    if (res.statusCode !== 200) throw await relayedError(res);
    const claimed = header(res, 'docker-content-digest');
    const claimedDigest = claimed === undefined ? null : safeDigest(claimed);
    const body = await readManifestBody(res, claimedDigest?.algorithm ?? 'sha256');
    if (claimedDigest !== null && claimedDigest.value !== body.digest) {
      throw gatewayError(
        'status',
        `the upstream's manifest for ${repo}:${tag} does not match its Docker-Content-Digest`,
      );
    }
    const digest = parseDigest(body.digest);
    const mediaType = typeOf(res, body.bytes);
    await this.#keep(repo, digest, mediaType, body.bytes);
    await this.#m.records.setTag(repo, tag, { digest: digest.value, mediaType, size: body.bytes.length });
    return { digest, mediaType, bytes: body.bytes, outcome: 'miss' };
  }

  /** A digest not yet confirmed in this repository: confirmed by a HEAD when stored, else fetched and verified. */
  async #fetchDigest(repo: string, digest: Digest, via: string | undefined): Promise<FoundManifest> {
    const { content, records } = this.#m;
    const rec = await records.manifest(repo, digest);
    const stored = await content.has(digest);
    try {
      if (stored) {
        // Stored under another repository or registry: the upstream must confirm it here first.
        let confirmed: UpstreamResponse | null = null;
        if (rec === null) {
          confirmed = await this.#ask('HEAD', repo, digest.value, via);
          discardBody(confirmed.body);
          if (confirmed.statusCode === 404) throw unknownManifest(repo, digest.value);
          if (confirmed.statusCode !== 200 && !headRefused(confirmed.statusCode)) throw await relayedError(confirmed);
        }
        // An upstream that takes no HEAD confirms by the GET below.
        const bytes = confirmed === null || confirmed.statusCode === 200 ? await content.read(digest, true) : null;
        if (bytes !== null) {
          const mediaType =
            rec?.mediaType ??
            (confirmed === null ? declaredType(bytes) : typeOf(confirmed, bytes)) ??
            'application/octet-stream';
          await records.setManifest(repo, digest, { mediaType, size: bytes.length });
          return { digest, mediaType, bytes, outcome: rec === null ? 'miss' : 'hit' };
        }
      }
      const res = await this.#ask('GET', repo, digest.value, via);
      if (res.statusCode === 404) {
        discardBody(res.body);
        throw unknownManifest(repo, digest.value);
      }
      if (res.statusCode !== 200) throw await relayedError(res);
      const body = await readManifestBody(res, digest.algorithm);
      if (body.digest !== digest.value) {
        throw gatewayError('status', `the upstream's manifest ${digest.value} does not hash to its digest`);
      }
      const mediaType = typeOf(res, body.bytes);
      await this.#keep(repo, digest, mediaType, body.bytes);
      return { digest, mediaType, bytes: body.bytes, outcome: 'miss' };
    } catch (err) {
      // Confirmed here before: immutable bytes still on disk serve while the upstream is out.
      if (rec !== null && isOutage(err)) {
        const bytes = await content.read(digest, true);
        if (bytes !== null) return { digest, mediaType: rec.mediaType, bytes, outcome: 'stale' };
      }
      throw err;
    }
  }

  /** One manifest request upstream, asking for every type we can store and negotiate. */
  #ask(method: 'GET' | 'HEAD', repo: string, reference: string, via: string | undefined): Promise<UpstreamResponse> {
    return this.#m.upstream.request({
      method,
      path: `/v2/${repo}/manifests/${reference}`,
      repo,
      headers: { accept: UPSTREAM_ACCEPT },
      via,
    });
  }

  async #keep(repo: string, digest: Digest, mediaType: string, bytes: Buffer): Promise<void> {
    await this.#m.content.put(digest, bytes);
    await this.#m.records.setManifest(repo, digest, { mediaType, size: bytes.length });
  }

  async #stale(repo: string, tag: string, known: TagRecord, why: unknown): Promise<FoundManifest> {
    const digest = safeDigest(known.digest);
    const bytes = digest === null ? null : await this.#m.content.read(digest, true);
    if (digest === null || bytes === null) {
      throw isRegistryError(why) ? why : gatewayError('unreachable', 'the upstream registry could not be asked');
    }
    this.#m.log.warn(
      {
        repo,
        tag,
        digest: known.digest,
        reason: isRegistryError(why) ? why.message : String(why),
      },
      'upstream unavailable: serving the last known tag',
    );
    this.#m.records.touch('tags', repo, tag);
    return { digest, mediaType: known.mediaType, bytes, outcome: 'stale' };
  }

  async #gone(repo: string, tag: string): Promise<never> {
    await this.#m.records.dropTag(repo, tag);
    this.#m.log.info({ repo, tag }, 'tag gone upstream: forgotten');
    throw unknownManifest(repo, tag);
  }
}

function unknownManifest(repo: string, reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', { detail: { name: repo, reference } });
}

function header(res: UpstreamResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function safeDigest(text: string): Digest | null {
  try {
    return parseDigest(text);
  } catch {
    return null;
  }
}

/** The upstream's Content-Type when it names a manifest type, else the document's own mediaType. */
function typeOf(res: UpstreamResponse, bytes: Buffer): string {
  const ct = mediaTypeOf(header(res, 'content-type') ?? '');
  if (KNOWN_TYPES.has(ct)) return ct;
  return declaredType(bytes) ?? (ct === '' ? 'application/octet-stream' : ct);
}

function declaredType(bytes: Buffer): string | null {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof doc.mediaType === 'string' ? mediaTypeOf(doc.mediaType) : null;
  } catch {
    return null;
  }
}

/**
 * A registry that has not implemented HEAD on manifests (405, 501): the same question is
 * asked with a GET, as containerd's resolver does for such registries.
 */
function headRefused(status: number): boolean {
  return status === 405 || status === 501;
}
