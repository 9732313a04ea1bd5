// Mirror mode (issue 15): a multi-layer image pulled by 16 clients at once through a
// pull-through mirror, beside distribution in proxy mode, both in front of the same far
// mock with tokens on (the mirrors sign in as admin through the token flow).
// - `mirror-cold`: the image is in neither subject; every client asks for the tag, then
//   the config and each layer.
// - `mirror-warm`: the same once one pull has warmed the subject: what a second wave of
//   an office's machines costs the upstream (distribution asks it about the tag every time;
//   we answer a tag from the store while it is fresh, tagttl 60 s).
// Figures: upstream requests (all of them, token requests and 401s included), upstream blob
// GETs, wall time and time to first byte of the 16 pulls.
import { RegistryClient } from '../../testkit/registry-client.js';
import { ErrorTally, load, round, wanMs, type Outcome } from './common.js';
import { REPO, type Blob } from './corpus.js';
import type { BenchEnv } from './env.js';
import { startCacheSubject, type Subject } from './subject.js';
import type { Processes } from './types.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** What docker, containerd and skopeo accept for manifests. */
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST,
].join(', ');
/** The mirrors' account at the mock (tokens on): the mock's default admin. */
export const MIRROR_CREDENTIALS = { username: 'admin', password: 'admin' } as const;

interface MirrorImage {
  tag: string;
  manifest: Blob;
  blobs: Blob[];
}

/** The image of one scenario: a config and layers from the corpus, and a Docker v2 manifest pushed to the mock. */
async function image(env: BenchEnv, key: string): Promise<MirrorImage> {
  const s = env.shape.mirror;
  const blobs = await env.blobs(`mirror-${key}`, [2_048, ...s.layers]);
  const [config, ...layers] = blobs;
  if (config === undefined) throw new Error('mirror: no blobs');
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: config.digest, size: config.size },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const client = new RegistryClient({ baseUrl: env.mock.url, ca: env.ca.cert, ...MIRROR_CREDENTIALS });
  try {
    const digest = await client.putManifest(REPO, `mirror-${key}`, DOCKER_MANIFEST, bytes);
    return { tag: `mirror-${key}`, manifest: { digest, size: bytes.length, file: '' }, blobs };
  } finally {
    await client.close();
  }
}

/** The pull of `img` through `subject`: the tag first, then config and layers, by their paths. */
function puller(subject: Subject, img: MirrorImage): Subject {
  return {
    ...subject,
    path: async (digest) =>
      digest === img.manifest.digest ? `/v2/${REPO}/manifests/${img.tag}` : `/v2/${REPO}/blobs/${digest}`,
  };
}

export async function mirrorPull(env: BenchEnv, subject: Subject, phase: 'cold' | 'warm'): Promise<Outcome> {
  const s = env.shape.mirror;
  const upstream = subject.upstream;
  if (upstream === null) throw new Error(`${subject.kind} has no upstream: mirror scenarios need a mirror`);
  const img = await image(env, phase);
  const objects = [img.manifest, ...img.blobs];
  const total = objects.reduce((n, b) => n + b.size, 0);
  const errors = new ErrorTally();
  const pullOf = puller(subject, img);
  const common = {
    driver: 'undici' as const,
    proto: 'h1' as const,
    headers: { accept: ACCEPT },
    cycle: false,
    durationMs: wanMs(env, total),
    slackMs: wanMs(env, total),
  };
  if (phase === 'warm') {
    env.phase('one pull to warm the mirror');
    errors.add(
      await load(env, pullOf, objects, {
        ...common,
        concurrency: 1,
        order: objects.map((_, i) => i),
        maxRequests: objects.length,
      }),
    );
  }
  const since = Date.now();
  env.phase(`${s.clients} clients pulling a ${objects.length - 1}-blob image`);
  // Each object is asked for by every client before the next: 16 requests of each in flight at once.
  const order = objects.flatMap((_, i) => Array.from({ length: s.clients }, () => i));
  const r = errors.add(
    await load(env, pullOf, objects, { ...common, concurrency: s.clients, order, maxRequests: order.length }),
  );
  // Every upstream request since the wave began (401s and token requests included), but the harness's own.
  const log = (await upstream.stats()).log.filter((e) => e.ts >= since && !e.path.startsWith('/_mock/'));
  const blobGets = log.filter(
    (e) => e.method === 'GET' && e.status === 200 && img.blobs.some((b) => e.path.endsWith(b.digest)),
  ).length;
  return {
    params: {
      clients: s.clients,
      layers: s.layers.length,
      imageBytes: total,
      phase,
      proto: 'h1',
      driver: 'undici',
    },
    figures: {
      upstreamRequests: log.length,
      upstreamBlobGets: blobGets,
      wallMs: round(r.elapsedMs, 0),
      ttfbP50Ms: round(r.ttfbMs?.p50, 1),
      ttfbP99Ms: round(r.ttfbMs?.p99, 1),
    },
    errors: errors.count,
    errorSamples: errors.samples,
  };
}

/** dtr-cache as a pure mirror of the far mock: distribution's own `proxy:` section, plus our `cas`. */
export async function startMirrorSubject(env: BenchEnv, label: string, processes: Processes): Promise<Subject> {
  return startCacheSubject(env, label, [], {
    processes,
    extraTop: [
      'proxy:',
      `  remoteurl: ${env.mock.url}`,
      `  username: ${MIRROR_CREDENTIALS.username}`,
      `  password: ${MIRROR_CREDENTIALS.password}`,
      `  cas: [${env.ca.certPath}]`,
      '',
    ].join('\n'),
  });
}
