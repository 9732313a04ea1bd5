// Which load driver runs which kind of load, chosen once per run: wrk for HTTP/1.1 hits and
// h2load for HTTP/2 when installed (Debian `wrk`, `nghttp2-client`), else the Node drivers
// (autocannon for small hits, raw for large bodies, undici for HTTP/2). `--h1-driver` and
// `--h2-driver` override the choice, e.g. to compare drivers against one server.
import { findBinary } from '../drivers/external.js';
import { H2LOAD_BIN } from '../drivers/h2load.js';
import type { LoadSpec } from '../drivers/protocol.js';
import { WRK_BIN } from '../drivers/wrk.js';

export type H1Driver = 'wrk' | 'autocannon' | 'raw';
export type H2Driver = 'h2load' | 'undici';

export interface Drivers {
  /** `hit-small-h1`: many small responses. */
  smallH1: Extract<LoadSpec['driver'], H1Driver>;
  /** `hit-large` over HTTP/1.1: few large bodies. */
  largeH1: Extract<LoadSpec['driver'], H1Driver>;
  /** `hit-small-h2` and `hit-large` over HTTP/2. */
  h2: Extract<LoadSpec['driver'], H2Driver>;
}

export const H1_DRIVERS: readonly H1Driver[] = ['wrk', 'autocannon', 'raw'];
export const H2_DRIVERS: readonly H2Driver[] = ['h2load', 'undici'];

export class DriverMissing extends Error {
  readonly code = 'BENCH_DRIVER_MISSING';
}

/** The drivers for this run; throws DriverMissing when an asked-for binary is absent. */
export async function chooseDrivers(h1: H1Driver | undefined, h2: H2Driver | undefined): Promise<Drivers> {
  const wrk = (await findBinary(WRK_BIN)) !== null;
  const h2load = (await findBinary(H2LOAD_BIN)) !== null;
  if (h1 === 'wrk' && !wrk) throw new DriverMissing('--h1-driver wrk: wrk is not installed');
  if (h2 === 'h2load' && !h2load) throw new DriverMissing('--h2-driver h2load: h2load is not installed');
  return {
    smallH1: h1 ?? (wrk ? 'wrk' : 'autocannon'),
    largeH1: h1 ?? (wrk ? 'wrk' : 'raw'),
    h2: h2 ?? (h2load ? 'h2load' : 'undici'),
  };
}
