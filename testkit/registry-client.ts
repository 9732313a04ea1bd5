// A minimal registry client on undici: the token flow, pushing an OCI image
// layout (monolithic uploads streamed from files), and pulling into an OCI
// layout. Pulls follow 307 redirects like docker, containerd and skopeo do:
// no Authorization to another host, every blob digest checked while streaming.
// The demo's fallback when skopeo is missing, and a test tool.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
const INDEX_TYPES = new Set([MANIFEST_TYPES[0], MANIFEST_TYPES[2]]);
const MAX_REDIRECTS = 5;

export type RegistryClientErrorCode =
  'HTTP_STATUS' | 'DIGEST_MISMATCH' | 'SIZE_MISMATCH' | 'AUTH' | 'REDIRECT' | 'LAYOUT';

export class RegistryClientError extends Error {
  constructor(
    readonly code: RegistryClientErrorCode,
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RegistryClientError';
  }
}

export interface RegistryClientOptions {
  /** Origin of the registry, e.g. `https://localhost:5000`. */
  baseUrl: string;
  /** PEM CA certificate(s) trusted for TLS, for the registry and any host it redirects to. */
  ca?: string | Buffer | (string | Buffer)[];
  username?: string;
  password?: string;
}

export interface PulledBlob {
  digest: string;
  size: number;
  /** Origin (`https://host:port`) the blob was redirected to, when it was. */
  redirectedTo?: string;
}

export interface PullResult {
  manifestDigest: string;
  mediaType: string;
  /** Child manifests of an index, in order. */
  manifests: string[];
  blobs: PulledBlob[];
}

export interface PushResult {
  manifestDigest: string;
  blobs: { digest: string; size: number; uploaded: boolean }[];
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
}

function isDescriptor(v: unknown): v is Descriptor {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Descriptor).digest === 'string' &&
    /^sha256:[a-f0-9]{64}$/.test((v as Descriptor).digest)
  );
}

function children(doc: Record<string, unknown>): { manifests: Descriptor[]; blobs: Descriptor[] } {
  const list = (v: unknown): Descriptor[] => (Array.isArray(v) ? v.filter(isDescriptor) : []);
  const blobs = list(doc['layers']);
  if (isDescriptor(doc['config'])) blobs.unshift(doc['config']);
  return { manifests: list(doc['manifests']), blobs };
}

/** Parses `Bearer realm="…",service="…"` (RFC 7235 §4.1 auth-params). */
export function parseChallenge(header: string | undefined): Record<string, string> | undefined {
  if (header === undefined || !/^bearer\s/i.test(header)) return undefined;
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) out[(m[1] ?? '').toLowerCase()] = m[2] ?? '';
  return out;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export class RegistryClient {
  readonly origin: string;
  private readonly agent: Agent;
  /** undefined until pinged; null when the registry wants no auth. */
  private challenge: Record<string, string> | null | undefined;
  private readonly tokens = new Map<string, { token: string; until: number }>();

  constructor(private readonly o: RegistryClientOptions) {
    this.origin = new URL(o.baseUrl).origin;
    this.agent = new Agent(o.ca === undefined ? {} : { connect: { ca: o.ca } });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private basic(): string | undefined {
    if (this.o.username === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.o.username}:${this.o.password ?? ''}`).toString('base64')}`;
  }

  /** `GET /v2/`: learns the token realm; no challenge means no auth needed. */
  async ping(): Promise<Record<string, string> | null> {
    const res = await request(`${this.origin}/v2/`, { dispatcher: this.agent });
    await res.body.dump();
    if (res.statusCode === 401) {
      const ch = parseChallenge(header(res.headers, 'www-authenticate'));
      if (ch?.['realm'] === undefined) throw new RegistryClientError('AUTH', 'no Bearer challenge at /v2/', 401);
      this.challenge = ch;
    } else if (res.statusCode === 200) {
      this.challenge = null;
    } else {
      throw new RegistryClientError('HTTP_STATUS', `GET /v2/ answered ${res.statusCode}`, res.statusCode);
    }
    return this.challenge;
  }

  /** A registry token for `scope` (distribution token flow), cached until shortly before expiry. */
  async token(scope: string): Promise<string | undefined> {
    const ch = this.challenge === undefined ? await this.ping() : this.challenge;
    if (ch === null || ch['realm'] === undefined) return undefined;
    const cached = this.tokens.get(scope);
    if (cached !== undefined && cached.until > Date.now()) return cached.token;
    const url = new URL(ch['realm']);
    if (ch['service'] !== undefined) url.searchParams.set('service', ch['service']);
    url.searchParams.set('scope', scope);
    const auth = this.basic();
    const res = await request(url, {
      dispatcher: this.agent,
      headers: auth === undefined ? {} : { authorization: auth },
    });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new RegistryClientError('AUTH', `token endpoint answered ${res.statusCode}: ${text}`, res.statusCode);
    const body = JSON.parse(text) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (token === undefined) throw new RegistryClientError('AUTH', 'token endpoint gave no token');
    this.tokens.set(scope, { token, until: Date.now() + Math.max(0, (body.expires_in ?? 60) - 30) * 1000 });
    return token;
  }

  /** A request to the registry with its token; on 401 the token is fetched anew once. */
  private async call(
    method: Dispatcher.HttpMethod,
    url: string | URL,
    scope: string,
    opts: { headers?: Record<string, string>; body?: () => Dispatcher.DispatchOptions['body'] } = {},
  ): Promise<Dispatcher.ResponseData> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.token(scope);
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      const res = await request(url, { method, headers, dispatcher: this.agent, body: opts.body?.() ?? null });
      if (res.statusCode !== 401 || attempt > 0) return res;
      await res.body.dump();
      this.tokens.delete(scope);
      // Learn the realm from this challenge: a registry open for pulls may
      // answer /v2/ with 200 and still want a token for a push.
      const ch = parseChallenge(header(res.headers, 'www-authenticate'));
      this.challenge = ch?.['realm'] === undefined ? undefined : ch;
    }
  }

  private async fail(res: Dispatcher.ResponseData, what: string): Promise<never> {
    const text = await res.body.text().catch(() => '');
    throw new RegistryClientError(
      'HTTP_STATUS',
      `${what} answered ${res.statusCode}: ${text.slice(0, 500)}`,
      res.statusCode,
    );
  }

  async getManifest(repo: string, ref: string): Promise<{ digest: string; mediaType: string; bytes: Buffer }> {
    const res = await this.call('GET', `${this.origin}/v2/${repo}/manifests/${ref}`, `repository:${repo}:pull`, {
      headers: { accept: MANIFEST_TYPES.join(', ') },
    });
    if (res.statusCode !== 200) return this.fail(res, `GET manifest ${repo}:${ref}`);
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const claimed = header(res.headers, 'docker-content-digest');
    if ((claimed !== undefined && claimed !== digest) || (ref.startsWith('sha256:') && ref !== digest)) {
      throw new RegistryClientError('DIGEST_MISMATCH', `manifest ${repo}:${ref} hashes to ${digest}`);
    }
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]?.trim() ?? '';
    return { digest, mediaType, bytes };
  }

  /**
   * Downloads a blob to `dest`, following redirects; Authorization goes only to
   * the registry's own origin. The file appears only once size and digest check out.
   */
  async fetchBlob(repo: string, d: Descriptor, dest: string): Promise<PulledBlob> {
    let url = new URL(`${this.origin}/v2/${repo}/blobs/${d.digest}`);
    let redirectedTo: string | undefined;
    for (let hop = 0; ; hop++) {
      const res =
        url.origin === this.origin
          ? await this.call('GET', url, `repository:${repo}:pull`)
          : await request(url, { dispatcher: this.agent });
      if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
        await res.body.dump();
        const loc = header(res.headers, 'location');
        if (loc === undefined || hop >= MAX_REDIRECTS)
          throw new RegistryClientError('REDIRECT', `bad redirect for ${d.digest}`, res.statusCode);
        url = new URL(loc, url);
        if (url.origin !== this.origin) redirectedTo = url.origin;
        continue;
      }
      if (res.statusCode !== 200)
        return this.fail(res, `GET blob ${d.digest}${redirectedTo === undefined ? '' : ` at ${redirectedTo}`}`);
      const tmp = `${dest}.part-${randomBytes(4).toString('hex')}`;
      const hash = createHash('sha256');
      let size = 0;
      try {
        await pipeline(
          res.body,
          async function* (src: AsyncIterable<Buffer>) {
            for await (const c of src) {
              hash.update(c);
              size += c.length;
              yield c;
            }
          },
          createWriteStream(tmp),
        );
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== d.digest)
          throw new RegistryClientError('DIGEST_MISMATCH', `blob ${d.digest} hashed to ${actual}`);
        if (d.size !== undefined && d.size !== size)
          throw new RegistryClientError('SIZE_MISMATCH', `blob ${d.digest}: ${size} bytes, expected ${d.size}`);
        await rename(tmp, dest);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return redirectedTo === undefined ? { digest: d.digest, size } : { digest: d.digest, size, redirectedTo };
    }
  }

  /** Pulls `repo:tag` (an image or an index) into an OCI image layout at `outDir`. */
  async pullImage(repo: string, tag: string, outDir: string): Promise<PullResult> {
    const blobsDir = join(outDir, 'blobs', 'sha256');
    await mkdir(blobsDir, { recursive: true });
    const top = await this.getManifest(repo, tag);
    const result: PullResult = { manifestDigest: top.digest, mediaType: top.mediaType, manifests: [], blobs: [] };
    const seen = new Set<string>();
    const visit = async (m: { digest: string; mediaType: string; bytes: Buffer }): Promise<void> => {
      await writeFile(join(blobsDir, m.digest.slice(7)), m.bytes);
      const doc = JSON.parse(m.bytes.toString('utf8')) as Record<string, unknown>;
      const c = children(doc);
      for (const child of c.manifests) {
        result.manifests.push(child.digest);
        await visit(await this.getManifest(repo, child.digest));
      }
      for (const b of c.blobs) {
        if (seen.has(b.digest)) continue;
        seen.add(b.digest);
        result.blobs.push(await this.fetchBlob(repo, b, join(blobsDir, b.digest.slice(7))));
      }
    };
    await visit(top);
    await writeFile(join(outDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(outDir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: top.mediaType,
            digest: top.digest,
            size: top.bytes.length,
            annotations: { 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    return result;
  }

  /** Uploads one blob file unless the registry has it: POST, then PUT ?digest= with the file as body. */
  async pushBlob(
    repo: string,
    digest: string,
    path: string,
  ): Promise<{ digest: string; size: number; uploaded: boolean }> {
    const scope = `repository:${repo}:pull,push`;
    const size = (await stat(path)).size;
    const head = await this.call('HEAD', `${this.origin}/v2/${repo}/blobs/${digest}`, scope);
    await head.body.dump();
    if (head.statusCode === 200) return { digest, size, uploaded: false };
    const start = await this.call('POST', `${this.origin}/v2/${repo}/blobs/uploads/`, scope, {
      headers: { 'content-length': '0' },
    });
    const loc = header(start.headers, 'location');
    if (start.statusCode !== 202 || loc === undefined) return this.fail(start, `POST upload ${repo}`);
    await start.body.dump();
    const put = new URL(loc, this.origin);
    put.searchParams.set('digest', digest);
    const res = await this.call('PUT', put, scope, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
    });
    if (res.statusCode !== 201) return this.fail(res, `PUT blob ${digest}`);
    await res.body.dump();
    return { digest, size, uploaded: true };
  }

  async putManifest(repo: string, ref: string, mediaType: string, bytes: Buffer): Promise<string> {
    const res = await this.call('PUT', `${this.origin}/v2/${repo}/manifests/${ref}`, `repository:${repo}:pull,push`, {
      headers: { 'content-type': mediaType },
      body: () => bytes,
    });
    if (res.statusCode !== 201) return this.fail(res, `PUT manifest ${repo}:${ref}`);
    await res.body.dump();
    return header(res.headers, 'docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  /** Pushes the image the layout's index.json names (the first one) as `repo:tag`. */
  async pushImage(layoutDir: string, repo: string, tag: string): Promise<PushResult> {
    const blobPath = (digest: string): string => join(layoutDir, 'blobs', 'sha256', digest.slice(7));
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests?: unknown };
    const top = Array.isArray(index.manifests) ? index.manifests.find(isDescriptor) : undefined;
    if (top === undefined) throw new RegistryClientError('LAYOUT', `${layoutDir}/index.json names no manifest`);
    const blobs: PushResult['blobs'] = [];
    const pushManifest = async (d: Descriptor, ref: string): Promise<string> => {
      const bytes = await readFile(blobPath(d.digest));
      const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      const mediaType =
        d.mediaType ?? (typeof doc['mediaType'] === 'string' ? doc['mediaType'] : (MANIFEST_TYPES[1] ?? ''));
      const c = children(doc);
      for (const child of c.manifests) await pushManifest(child, child.digest);
      for (const b of c.blobs) blobs.push(await this.pushBlob(repo, b.digest, blobPath(b.digest)));
      return this.putManifest(repo, ref, mediaType, bytes);
    };
    const manifestDigest = await pushManifest(top, tag);
    return { manifestDigest, blobs };
  }

  /** Whether a manifest media type is an index / manifest list. */
  static isIndex(mediaType: string): boolean {
    return INDEX_TYPES.has(mediaType);
  }
}
