// The naive baseline for hits (`peer-node-naive`): what a few lines of Node give,
// `https` + `fs.createReadStream` with its default 64 KiB reads, HTTP/1.1 only.
//   node dist/bench/peers/node-naive.js --cert PEM --key PEM --dir BLOBDIR [--port N]
// Serves GET /v2/<name>/blobs/sha256:<hex> from BLOBDIR/<hex>.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { cert: { type: 'string' }, key: { type: 'string' }, dir: { type: 'string' }, port: { type: 'string' } },
});
if (values.cert === undefined || values.key === undefined || values.dir === undefined) {
  process.stderr.write('usage: node-naive.js --cert PEM --key PEM --dir BLOBDIR [--port N]\n');
  process.exit(2);
}
const dir = values.dir;
const BLOB = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/;

const server = createServer({ cert: await readFile(values.cert), key: await readFile(values.key) }, (req, res) => {
  const hex = BLOB.exec(req.url ?? '')?.[1];
  if (hex === undefined) {
    res.writeHead(req.url === '/v2/' ? 200 : 404).end();
    return;
  }
  const file = join(dir, hex);
  stat(file).then(
    (st) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': st.size,
        'docker-content-digest': `sha256:${hex}`,
      });
      createReadStream(file).pipe(res);
    },
    () => res.writeHead(404).end(),
  );
});
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
