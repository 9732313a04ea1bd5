// The two value syntaxes of the config: durations read like Go's (a bare number is
// nanoseconds) and sizes like the DTR docs write them; bad input is a typed error, never NaN,
// and formatting round-trips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseGoDuration } from '../../src/config/duration.js';
import { ValueSyntaxError } from '../../src/config/errors.js';
import { formatSize, parseSize } from '../../src/config/size.js';
import { DAY_MS } from '../helpers/config.js';

describe('parseGoDuration', () => {
  const table: ReadonlyArray<readonly [string | number, number]> = [
    ['24h', DAY_MS],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['90m', 5_400_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['10us', 0.01],
    ['10µs', 0.01],
    ['10μs', 0.01],
    ['7ns', 0.000007],
    ['1h2m3s4ms5us6ns', 3_723_004.005006],
    ['.5s', 500],
    ['5.s', 5000],
    ['+1m', 60_000],
    ['0', 0],
    ['0s', 0],
    ['1.0000000001s', 1000], // truncated to whole nanoseconds, as Go does
    ['86400000000000', DAY_MS], // bare number = nanoseconds (DTR's blobttl reference)
    [86_400_000_000_000, DAY_MS],
    [1_000_000, 1],
  ];
  for (const [input, ms] of table) {
    it(`${JSON.stringify(input)} → ${ms} ms`, () => assert.equal(parseGoDuration(input), ms));
  }

  for (const bad of [
    '',
    ' ',
    '24',
    'h',
    '24x',
    '24H',
    '1d',
    '-1h',
    '-0',
    '1h 30m',
    '1h30',
    '.h',
    '1..5h',
    '1.5.h',
    'NaN',
    'Infinity',
    '1e3s',
    '0x10s',
    '3000000h',
    1.5,
    -1,
    Number.NaN,
  ]) {
    if (bad === '24') continue; // a bare numeric string is nanoseconds, not garbage
    it(`rejects ${JSON.stringify(bad)} with a typed error, never NaN`, () => {
      assert.throws(
        () => parseGoDuration(bad),
        (err) => err instanceof ValueSyntaxError && err.code === 'DURATION_INVALID',
      );
    });
  }

  it('formatDuration round-trips', () => {
    for (const ms of [DAY_MS, 5_400_000, 90_000, 1500, 500, 0.01, 0.000007, 3_723_004.005006, 0]) {
      assert.equal(parseGoDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
    assert.equal(formatDuration(DAY_MS), '24h');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(1500), '1.5s');
  });
});

describe('parseSize', () => {
  const table: ReadonlyArray<readonly [string | number, number]> = [
    ['200GiB', 200 * 2 ** 30],
    ['500MB', 500_000_000],
    ['10KiB', 10_240],
    ['1.5GB', 1_500_000_000],
    ['1.5KiB', 1536],
    ['10kB', 10_000],
    ['10KB', 10_000],
    ['2TiB', 2 * 2 ** 40],
    ['1TB', 1e12],
    ['3MiB', 3 * 2 ** 20],
    ['100 MB', 100e6],
    ['512B', 512],
    ['4096', 4096],
    [4096, 4096],
    ['0', 0],
  ];
  for (const [input, bytes] of table) {
    it(`${JSON.stringify(input)} → ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));
  }
  for (const bad of [
    '',
    'lots',
    '-1',
    '-1GB',
    '10G',
    '10 G',
    '1.5',
    '10XB',
    'GB',
    '1e3',
    '10 GiB ',
    '10GiBs',
    '99999PiB',
    -1,
    1.5,
    Number.NaN,
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseSize(bad),
        (err) => err instanceof ValueSyntaxError && err.code === 'SIZE_INVALID',
      );
    });
  }
  it('formatSize', () => {
    assert.equal(formatSize(200 * 2 ** 30), '200GiB');
    assert.equal(formatSize(1536), '1.5KiB');
    assert.equal(formatSize(512), '512B');
  });
});
