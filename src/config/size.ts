// Byte sizes for `maxsize` and `http.limits.maxheadersize`: decimal units (kB, MB, GB, TB, PB
// = 1000^n) and binary units (KiB, MiB, GiB, TiB, PiB = 1024^n), case-insensitive. A bare
// integer is bytes. Bare letters (`10G`, `500m`) are rejected: docker reads them as binary,
// other tools as decimal, and a cache size is too costly to guess.
import { ValueSyntaxError } from './errors.js';

export const SIZE_EXPECTED = 'a size such as 200GiB, 500MB or 10KiB (bare integer = bytes)';

const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  pib: 2 ** 50,
};

const SIZE = /^(\d+(?:\.\d+)?|\.\d+) ?([A-Za-z]+)?$/;

/** Parses a size into whole bytes (fractions of a byte are dropped). Throws ValueSyntaxError. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new ValueSyntaxError('SIZE_INVALID', String(value), SIZE_EXPECTED);
    return value;
  }
  if (typeof value !== 'string') throw new ValueSyntaxError('SIZE_INVALID', String(value), SIZE_EXPECTED);
  const m = SIZE.exec(value);
  if (m === null) throw new ValueSyntaxError('SIZE_INVALID', value, SIZE_EXPECTED);
  const amount = Number(m[1]);
  const unitName = m[2];
  if (unitName === undefined && !Number.isInteger(amount)) {
    throw new ValueSyntaxError('SIZE_INVALID', value, `${SIZE_EXPECTED}; a bare number must be whole bytes`);
  }
  const unit = unitName === undefined ? 1 : BYTES_PER_UNIT[unitName.toLowerCase()];
  if (unit === undefined) throw new ValueSyntaxError('SIZE_INVALID', value, SIZE_EXPECTED);
  const bytes = Math.floor(amount * unit);
  if (!Number.isSafeInteger(bytes)) throw new ValueSyntaxError('SIZE_INVALID', value, `${SIZE_EXPECTED}, below 8 PiB`);
  return bytes;
}

/** Bytes → `200GiB`, `1.5MiB`, `512B`: for messages. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${Number(value.toFixed(2))}${units[i]}`;
}
