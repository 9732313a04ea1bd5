// How a fill gets somewhere to write: its own spool, none (the disk cannot take even an
// empty file: bytes stream through memory), or another replica's fill to follow. The
// replica path ends in a publication, or in a spool this fill continues from an offset.
import type { FileHandle } from 'node:fs/promises';
import { gatewayError } from '../errors/upstream.js';
import type { Digest } from '../store/digest.js';
import { isThisProcess, type OwnedSpool, type SpoolOwner } from '../store/spool.js';
import type { FillDeps } from './deps.js';
import { unlessDiskFull } from './disk-full.js';
import { FillFailure } from './outcome.js';
import { ReplicaFollower } from './replica.js';
import type { Signal } from './signal.js';

export type Claim =
  | { kind: 'owned'; spool: OwnedSpool }
  | { kind: 'none' }
  | { kind: 'replica'; follower: ReplicaFollower; size: number };

export interface ClaimContext {
  deps: FillDeps;
  digest: Digest;
  finalPath: string;
  /** The fill's progress signal: a follower notifies it as the replica's file grows. */
  progress: Signal;
}

export async function claimSpool(ctx: ClaimContext): Promise<Claim> {
  const { deps, digest } = ctx;
  for (let attempt = 0; ; attempt++) {
    const claim = await unlessDiskFull(deps, digest, () => deps.spools.claim(digest));
    if (claim === null) return { kind: 'none' };
    let owner: SpoolOwner | null;
    const published = claim.kind === 'created';
    if (claim.kind === 'created') {
      if ((await deps.store.lookup(digest)) === null) return { kind: 'owned', spool: claim.spool };
      // Published since the request looked: another process of the node (or a replica)
      // finished this blob and let its claim go just before ours. Fetch nothing: read that
      // copy, as a follower whose writer is done.
      await claim.spool.release();
      owner = null;
    } else {
      // Our own process's spool belongs to a fill streaming through memory (the disk
      // failed); following it would stall where its writes stopped.
      if (claim.owner !== null && isThisProcess(claim.owner)) return { kind: 'none' };
      owner = claim.owner;
    }
    const follower = new ReplicaFollower(deps.spools, digest, ctx.finalPath, owner, ctx.progress, deps.directWrites);
    const size = await follower.size().catch(async (err: unknown) => {
      await follower.close(false);
      throw err;
    });
    if (size !== null) return { kind: 'replica', follower, size };
    // The writer died before it knew the size (or the published copy went again): nothing to
    // continue from.
    await follower.close(false);
    if (!published) await deps.spools.removeDead(digest, owner);
    if (attempt >= 2) throw new FillFailure('io', gatewayError('status', 'the spool of this blob is stuck'));
  }
}

/** How following a replica ended: it published the blob, or this fill goes on from `offset`. */
export type Followed =
  { kind: 'published' } | { kind: 'continue'; spool: OwnedSpool | null; offset: number; prefix: FileHandle | null };

/**
 * Follows a replica's fill. When its writer dies, this fill takes the spool over; when the
 * writer gives up without publishing (its disk failed, say) while our clients still wait,
 * this fill claims the blob itself. Either way it continues from the bytes it has already
 * served, read back from the writer's file (kept open as the prefix), so that its own hash
 * covers them.
 */
export async function followReplica(
  ctx: ClaimContext,
  follower: ReplicaFollower,
  fill: { size: number; waiting(): number; keep(handle: FileHandle): void },
): Promise<Followed> {
  const { log } = ctx.deps;
  const digest = ctx.digest.value;
  log.info({ digest, size: fill.size }, "following a replica's fill of this blob");
  const outcome = await follower
    .follow(() => fill.waiting() === 0)
    .catch(async (err: unknown) => {
      await follower.close(false);
      throw err;
    });
  if (outcome.kind === 'published') {
    follower.markPublished();
    if (follower.file !== null) fill.keep(follower.file);
    return { kind: 'published' };
  }
  const offset = follower.arrived();
  const continuing = outcome.kind === 'took-over' || fill.waiting() > 0;
  await follower.close(continuing);
  if (follower.file !== null && continuing) fill.keep(follower.file);
  if (outcome.kind === 'took-over') {
    log.warn({ digest, offset, size: fill.size }, 'took over the spool of a dead writer');
    return { kind: 'continue', spool: outcome.spool, offset, prefix: follower.file };
  }
  if (!continuing) {
    // Every client of this process left: nothing failed here, whatever the writer does next.
    if (outcome.kind === 'abandoned') throw new FillFailure('aborted', gatewayError('reset', 'every client left'));
    throw new FillFailure('upstream', gatewayError('status', 'the replica filling this blob failed'));
  }
  const spool = await claimAgain(ctx, fill.size);
  log.warn(
    { digest, offset, size: fill.size },
    "the replica's fill of this blob ended unpublished: continuing it here",
  );
  return { kind: 'continue', spool, offset, prefix: follower.file };
}

/**
 * The spool for a fill that continues a replica's: ours, or none (the disk is full, or
 * another replica claimed it first), and then the fill goes on through memory.
 */
async function claimAgain(ctx: ClaimContext, size: number): Promise<OwnedSpool | null> {
  const claim = await unlessDiskFull(ctx.deps, ctx.digest, () => ctx.deps.spools.claim(ctx.digest));
  if (claim?.kind !== 'created') return null;
  claim.spool.setSize(size).catch(() => undefined);
  return claim.spool;
}
