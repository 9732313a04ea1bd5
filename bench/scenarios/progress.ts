// The progress line on stderr: rewritten in place on a terminal, one line per phase otherwise
// (CI logs, the smoke test), so a long run always shows what it is doing.
export class Progress {
  readonly #tty = process.stderr.isTTY === true;
  #label = '';
  #phase = '';
  #since = performance.now();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly quiet = false) {}

  scenario(index: number, total: number, name: string): void {
    this.#label = `[${index}/${total}] ${name}`;
    this.#since = performance.now();
    this.phase('starting');
    if (this.#tty && this.#timer === null) this.#timer = setInterval(() => this.#draw(), 250).unref();
  }

  phase(what: string): void {
    this.#phase = what;
    if (this.quiet) return;
    if (this.#tty) this.#draw();
    else process.stderr.write(`${this.#line()}\n`);
  }

  /** Prints a finished scenario's one-line summary above the progress line. */
  done(summary: string): void {
    if (this.quiet) return;
    if (this.#tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${this.#label}: ${summary}\n`);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#tty && !this.quiet) process.stderr.write('\r\x1b[K');
  }

  #line(): string {
    return `${this.#label} · ${this.#phase} · ${((performance.now() - this.#since) / 1000).toFixed(1)} s`;
  }

  #draw(): void {
    if (!this.quiet) process.stderr.write(`\r\x1b[K${this.#line()}`);
  }
}
