// A job that runs every `periodMs` and never overlaps itself: a call while a run is under way
// shares that run. Used by the sweeps of expiry and eviction (store/eviction.ts) and of a
// mirror's records (mirror/retention.ts). Its timer never keeps the process alive.
export class Periodic {
  readonly #job: () => Promise<void>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(job: () => Promise<void>) {
    this.#job = job;
  }

  /** Runs the job every `periodMs`, the next run timed from the end of the last. */
  start(periodMs: number): void {
    const tick = (): void => {
      void this.run().finally(() => {
        if (this.#timer !== null) this.#timer = setTimeout(tick, periodMs).unref();
      });
    };
    this.#timer = setTimeout(tick, periodMs).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** One run now, or the one under way. */
  run(): Promise<void> {
    this.#running ??= this.#job().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }
}
