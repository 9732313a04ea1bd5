// Resident memory and open file descriptors of each cache tier, sampled over the run from
// /proc (the tier's process and any child processes it starts), and the verdict on whether
// they stayed flat: a leak shows as a level that keeps climbing under a steady load.
import { readdir, readFile } from 'node:fs/promises';

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  pid: number;
  rssBytes: number;
  fds: number;
}

/** Direct children of `pid`, from every thread's /proc/PID/task/TID/children (proc(5)). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const c of text.split(' ')) if (/^\d+$/.test(c)) out.push(Number(c));
  }
  return out;
}

async function rssOf(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

async function fdsOf(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).length;
}

/** RSS and FDs of `pid` and its descendants; null when it is gone. */
export async function sampleTree(pid: number): Promise<{ rssBytes: number; fds: number } | null> {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(await childrenOf(tree[i] ?? pid)));
  let rssBytes = 0;
  let fds = 0;
  if ((await rssOf(pid)) === 0) return null;
  for (const p of tree) {
    rssBytes += await rssOf(p);
    fds += await fdsOf(p);
  }
  return { rssBytes, fds };
}

export interface Flatness {
  /** Median over the first and the last window of the incarnation's samples under load. */
  start: number;
  end: number;
  limit: number;
  ok: boolean;
}

export interface FlatVerdict {
  pid: number;
  samples: number;
  judged: boolean;
  /** Why it was not judged (too few samples), or null. */
  note: string | null;
  rss: Flatness | null;
  fds: Flatness | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] ?? 0);
}

/** At least this many samples of one process under load, or flatness is not judged. */
export const MIN_SAMPLES = 20;
/** RSS may end at most this much above where it started: load mixes vary, a leak does not stop. */
const RSS_SLACK = { ratio: 1.5, bytes: 64 << 20 };
/** FDs: connections and open blobs vary with the load; a leak adds one per request. */
const FD_SLACK = 32;

/**
 * Judges the last incarnation's samples (the one alive at the end): the median of its first
 * quarter of samples against the median of its last quarter. Earlier incarnations ended by
 * kill -9 and say nothing about a leak over time.
 */
export function judgeFlat(samples: Sample[]): FlatVerdict {
  const pid = samples[samples.length - 1]?.pid ?? 0;
  const mine = samples.filter((s) => s.pid === pid);
  if (mine.length < MIN_SAMPLES) {
    return {
      pid,
      samples: mine.length,
      judged: false,
      note: `${mine.length} samples of the last process (< ${MIN_SAMPLES}): run longer to judge`,
      rss: null,
      fds: null,
    };
  }
  // The first quarter skips its first sample: a process just (re)started is still warming up.
  const q = Math.max(2, Math.floor(mine.length / 4));
  const head = mine.slice(1, q + 1);
  const tailS = mine.slice(-q);
  const rssStart = median(head.map((s) => s.rssBytes));
  const rssEnd = median(tailS.map((s) => s.rssBytes));
  const rssLimit = Math.max(rssStart * RSS_SLACK.ratio, rssStart + RSS_SLACK.bytes);
  const fdStart = median(head.map((s) => s.fds));
  const fdEnd = median(tailS.map((s) => s.fds));
  return {
    pid,
    samples: mine.length,
    judged: true,
    note: null,
    rss: { start: rssStart, end: rssEnd, limit: Math.round(rssLimit), ok: rssEnd <= rssLimit },
    fds: { start: fdStart, end: fdEnd, limit: fdStart + FD_SLACK, ok: fdEnd <= fdStart + FD_SLACK },
  };
}
