// The node-wide count of open connections per client IP, kept by the supervisor: each
// serving process tells it of every connection it opens and closes, so a client cannot
// hold N × http.limits.maxconnectionsperip connections by landing on N processes.

export class IpTable {
  readonly #max: number;
  readonly #open = new Map<string, number>();
  /** Per process (node:cluster worker id, never reused): its connections and their IPs. */
  readonly #byProcess = new Map<number, Map<number, string>>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Counts the connection, or returns false (not counted) when the IP is at the limit. */
  open(proc: number, conn: number, ip: string): boolean {
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.#max) return false;
    this.#open.set(ip, n + 1);
    let conns = this.#byProcess.get(proc);
    if (conns === undefined) this.#byProcess.set(proc, (conns = new Map()));
    conns.set(conn, ip);
    return true;
  }

  /** A connection closed; one that was refused (never counted) is ignored. */
  close(proc: number, conn: number): void {
    const conns = this.#byProcess.get(proc);
    const ip = conns?.get(conn);
    if (conns === undefined || ip === undefined) return;
    conns.delete(conn);
    this.#release(ip);
  }

  /** A process is gone, and its connections with it. */
  forget(proc: number): void {
    for (const ip of this.#byProcess.get(proc)?.values() ?? []) this.#release(ip);
    this.#byProcess.delete(proc);
  }

  count(ip: string): number {
    return this.#open.get(ip) ?? 0;
  }

  #release(ip: string): void {
    const left = (this.#open.get(ip) ?? 1) - 1;
    if (left <= 0) this.#open.delete(ip);
    else this.#open.set(ip, left);
  }
}
