// The runtime is pinned: package.json's `engines`, its `node` dependency (the npm package
// that installs the Node.js binary into node_modules/.bin, which npm scripts and npx run),
// the Dockerfile's base image and the systemd unit all name one major, and the tests run
// on it. A test run on another major fails here rather than measure the wrong runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (name: string) => readFile(`${ROOT}${name}`, 'utf8');

test('runtime: one Node.js major everywhere, and the tests run on it', async () => {
  const pkg = JSON.parse(await read('package.json')) as {
    engines: { node: string };
    dependencies: Record<string, string>;
  };
  const major = /^>=(\d+)\.\d+\.\d+ <(\d+)$/.exec(pkg.engines.node);
  assert.ok(major, `engines.node names one major: ${pkg.engines.node}`);
  assert.equal(Number(major[2]), Number(major[1]) + 1);
  const want = Number(major[1]);
  assert.equal(Number(/^\^?(\d+)\./.exec(pkg.dependencies['node'] ?? '')?.[1]), want, 'the pinned node package');
  assert.equal(
    Number(process.versions.node.split('.')[0]),
    want,
    `tests run on Node.js ${want} (this is ${process.version}): run them through npm, which puts node_modules/.bin first`,
  );
  assert.match(await read('deploy/Dockerfile'), new RegExp(`^ARG NODE_IMAGE=node:${want}-`, 'm'));
  const lock = JSON.parse(await read('package-lock.json')) as { packages: Record<string, { version?: string }> };
  assert.equal(
    Number(lock.packages['node_modules/node']?.version?.split('.')[0]),
    want,
    'the lockfile installs the same major',
  );
});
