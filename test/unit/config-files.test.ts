// The files a config names, as loadConfigFile checks them before anything starts: every
// certificate block of a `cas` or TLS certificate file must parse (OpenSSL would skip a
// corrupt CA silently), and a broken pair is reported under the file that is broken.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.js';
import { checkError, seed } from '../helpers/config.js';
import { dir, fillAll, useTempDir, writeConfig } from '../helpers/config-files.js';

useTempDir();

/** A PEM certificate with a line of its body dropped: the BEGIN/END lines are there, the DER is cut. */
function corrupt(pem: string): string {
  const lines = pem.trim().split('\n');
  return `${[...lines.slice(0, 3), ...lines.slice(4)].join('\n')}\n`;
}

describe('certificate files whose blocks do not parse are refused under their key path', () => {
  it('a cas file with a corrupt block after a good one', async () => {
    const { text, paths } = await fillAll(await seed('003-china.yml'));
    const good = await readFile(paths.get('/certs/dtr-ca.pem') ?? '', 'utf8');
    const bundle = join(dir, 'bundle.pem');
    await writeFile(bundle, `${good}${corrupt(good)}`);
    const bad = text.replace(join(dir, 'dtr-ca.pem'), bundle);
    await assert.rejects(loadConfigFile(await writeConfig('corrupt-ca.yml', bad), {}), (err) =>
      checkError(err, {
        keyPath: 'middleware.registry[0].options.cas[1]',
        line: 23,
        message: /found ".*bundle\.pem" whose certificate 2 of 2 does not parse \(.+\), expected a readable PEM file/,
      }),
    );
    const unterminated = join(dir, 'unterminated.pem');
    await writeFile(unterminated, `${good}-----BEGIN CERTIFICATE-----\nMIIB\n`);
    await assert.rejects(
      loadConfigFile(await writeConfig('open-ca.yml', text.replace(join(dir, 'dtr-ca.pem'), unterminated)), {}),
      (err) =>
        checkError(err, { keyPath: 'middleware.registry[0].options.cas[1]', message: /block that has no END line/ }),
    );
    // The good bundle of both still loads.
    await writeFile(bundle, `${good}${good}`);
    await loadConfigFile(await writeConfig('good-ca.yml', bad), {});
  });
});

describe('the TLS pair', () => {
  it('a corrupt certificate with a good key is reported under http.tls.certificate', async () => {
    const { text, paths } = await fillAll(await seed('003-asia.yml'));
    const certPath = paths.get('/certs/asia-ca.pem') ?? '';
    await writeFile(certPath, corrupt(await readFile(certPath, 'utf8')));
    await assert.rejects(loadConfigFile(await writeConfig('corrupt-cert.yml', text), {}), (err) =>
      checkError(err, {
        keyPath: 'http.tls.certificate',
        line: 10,
        message: /found ".*asia-ca\.pem" whose certificate 1 of 1 does not parse/,
      }),
    );
  });
});

describe('http.tls.clientcas files, checked as `cas` files are', () => {
  /** The Asia cache (TLS) with two client CA files under http.tls (lines 12 to 14). */
  const withClientCas = async () =>
    fillAll(
      (await seed('003-asia.yml')).replace(
        '    key: /certs/asia-key.pem\n',
        '    key: /certs/asia-key.pem\n    clientcas:\n      - /certs/client-ca.pem\n      - /certs/other-client-ca.pem\n',
      ),
    );

  it('good files load; their paths are in the config', async () => {
    const { text, paths } = await withClientCas();
    const { config } = await loadConfigFile(await writeConfig('clientcas.yml', text), {});
    assert.deepEqual(config.http.tls?.clientCas, [
      paths.get('/certs/client-ca.pem'),
      paths.get('/certs/other-client-ca.pem'),
    ]);
  });

  it('missing, without a CERTIFICATE block, or with one that does not parse: refused under http.tls.clientcas[i]', async () => {
    const { text, paths } = await withClientCas();
    const other = paths.get('/certs/other-client-ca.pem') ?? '';
    const missing = text.replace(other, join(dir, 'no-such-client-ca.pem'));
    await assert.rejects(loadConfigFile(await writeConfig('clientcas-missing.yml', missing), {}), (err) =>
      checkError(err, {
        keyPath: 'http.tls.clientcas[1]',
        line: 14,
        message: /found ".*no-such-client-ca\.pem" \(ENOENT\), expected a readable PEM file/,
      }),
    );
    const good = await readFile(other, 'utf8');
    await writeFile(other, 'hello\n');
    await assert.rejects(loadConfigFile(await writeConfig('clientcas-not-pem.yml', text), {}), (err) =>
      checkError(err, { keyPath: 'http.tls.clientcas[1]', line: 14, message: /without one/ }),
    );
    await writeFile(other, `${good}${corrupt(good)}`);
    await assert.rejects(loadConfigFile(await writeConfig('clientcas-corrupt.yml', text), {}), (err) =>
      checkError(err, {
        keyPath: 'http.tls.clientcas[1]',
        line: 14,
        message: /whose certificate 2 of 2 does not parse/,
      }),
    );
  });
});

/** A certificate for `keyPath`, self-signed, valid only from `start` to `end` (openssl ca: YYYYMMDDHHMMSSZ). */
async function certificateValid(keyPath: string, start: string, end: string, name: string): Promise<string> {
  const run = promisify(execFile);
  const db = join(dir, `${name}-db`);
  await mkdir(db, { recursive: true });
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(join(db, 'serial'), '1000\n');
  await writeFile(
    join(db, 'ca.cnf'),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${db}/index.txt\nserial = ${db}/serial\nnew_certs_dir = ${db}\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n`,
  );
  const csr = join(db, 'cache.csr');
  const out = join(dir, `${name}.pem`);
  await run('openssl', ['req', '-new', '-key', keyPath, '-subj', '/CN=localhost', '-out', csr]);
  await run('openssl', [
    'ca',
    '-batch',
    '-selfsign',
    '-notext',
    '-config',
    join(db, 'ca.cnf'),
    '-keyfile',
    keyPath,
    '-in',
    csr,
    '-startdate',
    start,
    '-enddate',
    end,
    '-out',
    out,
  ]);
  return out;
}

describe('a server certificate outside its validity period', () => {
  it('loads (as in distribution), with a warning under http.tls.certificate', async () => {
    const { text, paths } = await fillAll(await seed('003-asia.yml'));
    const keyPath = paths.get('/certs/asia-key.pem') ?? '';
    const certPath = paths.get('/certs/asia-ca.pem') ?? '';
    const expired = await certificateValid(keyPath, '20200101000000Z', '20200201000000Z', 'expired');
    const { warnings } = await loadConfigFile(await writeConfig('expired.yml', text.replace(certPath, expired)), {});
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /^config warning: http\.tls\.certificate \(line 10\): ".*expired\.pem" expired on 2020-02-01T00:00:00\.000Z: clients will refuse the TLS handshake$/,
    );
    const future = await certificateValid(keyPath, '20991201000000Z', '21000101000000Z', 'future');
    const later = await loadConfigFile(await writeConfig('future.yml', text.replace(certPath, future)), {});
    assert.match(later.warnings[0] ?? '', /"\S*future\.pem" is not valid before 2099-12-01T00:00:00\.000Z/);
    // The valid leaf of the test CA: no warning.
    assert.deepEqual((await loadConfigFile(await writeConfig('valid.yml', text), {})).warnings, []);
  });
});
