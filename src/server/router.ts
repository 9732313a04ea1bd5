// Routes: GET /v2/ → 200 {}; GET|HEAD /v2/<name>/blobs/<digest>;
// GET /.well-known/jwks.json; in mirror mode manifests, blobs and referrers of mirrored
// registries (src/mirror decides which requests are its, docs/mirror.md); everything else →
// registry error JSON (404, or 405 on a blob path). Names and digests are validated before
// anything touches disk or upstream.
import { RegistryError, isRegistryError, methodNotAllowed, toRegistryError } from '../errors/registry.js';
import { validateName } from '../distribution/name.js';
import { parseDigest } from '../store/digest.js';
import type { AppContext, RequestRecord } from './context.js';
import { handleBlob } from './handlers/blob.js';
import { asRes, type Req, type Res } from './http-types.js';
import { ClientGone } from './send-blob.js';
import { sendError, sendJson } from './respond.js';

const BLOBS = '/blobs/';
const READ_METHODS = ['GET', 'HEAD'];

export function createRouter(ctx: AppContext) {
  const afterTurn = new AfterTurn(ctx.log);
  return async function route(req: Req, rawRes: Res): Promise<void> {
    const res = asRes(rawRes);
    const started = process.hrtime.bigint();
    const rec: RequestRecord = { route: 'other', bytes: 0 };
    const head = req.method === 'HEAD';
    let status = 0;
    try {
      // The path is matched raw: never percent-decoded nor dot-segment-normalised, so
      // `..%2f` and `/../` simply fail the name grammar.
      const raw = originForm(req.url ?? '/');
      const q = raw.indexOf('?');
      const path = q < 0 ? raw : raw.slice(0, q);
      const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
      if (path === '/v2/' || path === '/v2') {
        rec.route = 'base';
        if (req.method !== 'GET' && !head) throw methodNotAllowed(READ_METHODS);
        sendJson(res, 200, {}, head);
      } else if (path === '/.well-known/jwks.json') {
        rec.route = 'jwks';
        if (req.method !== 'GET' && !head) throw methodNotAllowed(READ_METHODS);
        // A downstream tier asks when it meets an unknown kid: refresh ours first if stale.
        await ctx.keys.freshen();
        sendJson(res, 200, ctx.keys.toJSON(), head);
      } else if (ctx.mirror?.claims(path, query, req) === true) {
        await ctx.mirror.serve(req, res, path, query, rec);
      } else if (path.startsWith('/v2/') && path.lastIndexOf(BLOBS) >= 4) {
        rec.route = 'blob';
        // Before the path is read: a push (`POST …/blobs/uploads/`) is refused as a method, not as a digest.
        if (req.method !== 'GET' && !head)
          throw methodNotAllowed(READ_METHODS, `${req.method} is not supported on blobs: this is a pull-through cache`);
        const at = path.lastIndexOf(BLOBS);
        const name = validateName(path.slice(4, at));
        const digest = parseDigest(path.slice(at + BLOBS.length));
        rec.repo = name;
        rec.digest = digest.value;
        await handleBlob(ctx, req, res, query, name, digest, rec);
      } else {
        throw new RegistryError('NOT_FOUND', { message: `no route for ${path.slice(0, 200)}` });
      }
      status = rawRes.statusCode;
    } catch (err) {
      if (err instanceof ClientGone) {
        status = 499;
      } else {
        if (!isRegistryError(err)) ctx.log.error({ err }, 'unexpected error');
        const regErr = toRegistryError(err);
        status = res.headersSent ? 0 : regErr.status;
        if (!rec.outcome) rec.outcome = 'error';
        sendError(res, regErr, head, challengeFor(ctx, regErr, rec));
        if (status === 0) status = rawRes.statusCode;
        rec.error = regErr.message;
      }
    }
    const ended = process.hrtime.bigint();
    const { method, httpVersion } = req;
    afterTurn.add(() => {
      ctx.metrics?.request(
        rec.route,
        method,
        status,
        rec.outcome,
        rec.bytes,
        rec.error !== undefined,
        Number(ended - started) / 1e9,
        rec.firstByteAt === undefined ? undefined : Number(rec.firstByteAt - started) / 1e9,
      );
      if (ctx.accessLog === null) return;
      const ms = Number(ended - started) / 1e6;
      ctx.accessLog.write({
        method,
        route: rec.route,
        registry: rec.registry,
        repo: rec.repo,
        digest: rec.digest,
        status,
        bytes: rec.bytes,
        ms: Math.round(ms * 10) / 10,
        outcome: rec.outcome,
        proto: httpVersion,
        err: rec.error,
      });
    });
  };
}

/**
 * A request's metrics and access-log line are recorded once the event loop's I/O phase is
 * over, in one batch per turn, not between one response and the next. The responses of a
 * turn then leave one after another, and a client that one of them wakes finds the next
 * already there: small hits took 17–18.5k req/s against 14–15k with the same work done in
 * line (bench/NOTES.md, "The bookkeeping after the turn"). A scrape or a log reader asks in
 * a later turn, after the batch.
 */
class AfterTurn {
  readonly #log: AppContext['log'];
  #jobs: Array<() => void> = [];
  #armed = false;

  constructor(log: AppContext['log']) {
    this.#log = log;
  }

  add(job: () => void): void {
    this.#jobs.push(job);
    if (this.#armed) return;
    this.#armed = true;
    setImmediate(() => this.#run());
  }

  #run(): void {
    this.#armed = false;
    const jobs = this.#jobs;
    this.#jobs = [];
    for (const job of jobs) {
      try {
        job();
      } catch (err) {
        this.#log.error({ err }, 'recording a request failed');
      }
    }
  }
}

/**
 * RFC 9112 §3.2.2: a server must accept the absolute-form (`GET https://host/v2/…`), which
 * clients send to proxies; its path and query are the route. The authority is not checked:
 * the Host field is not either.
 */
function originForm(target: string): string {
  const scheme = /^https?:\/\//i.exec(target);
  if (scheme === null) return target;
  const slash = target.indexOf('/', scheme[0].length);
  const query = target.indexOf('?', scheme[0].length);
  if (slash < 0 || (query >= 0 && query < slash)) return query < 0 ? '/' : `/${target.slice(query)}`;
  return target.slice(slash);
}

/**
 * RFC 9110 §15.5.2: every 401 carries a challenge. An upstream's 401 relayed without one (the
 * upstream refused the token) gets the cache's own, pointing at the origin's token service.
 * Mirror mode relays its upstream's answers as they are: its clients hold no origin token.
 */
function challengeFor(ctx: AppContext, err: RegistryError<string>, rec: RequestRecord): Record<string, string> {
  if (err.status !== 401 || 'WWW-Authenticate' in err.headers || rec.registry !== undefined) return {};
  return { 'WWW-Authenticate': ctx.verifier.challenge('invalid_token') };
}
