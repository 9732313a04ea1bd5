// Test-time PKI: a throwaway CA and leaf certificates, made with the openssl CLI
// into a temporary directory. Used by tests, the demo and the benchmark, so no
// private key is ever committed.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeAtExit } from './tmp.js';

const run = promisify(execFile);

export interface Leaf {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** PEM path of the CA certificate (for `cas`, `--src-cert-dir`, undici `ca`). */
  certPath: string;
  cert: string;
  /** Issues a server certificate for localhost, 127.0.0.1 and ::1 (plus extra DNS names). */
  issue(name: string, dnsNames?: string[]): Promise<Leaf>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

/** Makes a new CA (EC P-256, valid one day) in a fresh temporary directory, or in `dir`. */
export async function createTestCa(label = 'dtr-cache test CA', dir?: string): Promise<TestCa> {
  const root = dir ?? removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-pki-')));
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], root);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${label}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.crt',
    ],
    root,
  );
  const certPath = join(root, 'ca.crt');
  const cert = await readFile(certPath, 'utf8');
  let serial = 1;
  return {
    dir: root,
    certPath,
    cert,
    async issue(name: string, dnsNames: string[] = []): Promise<Leaf> {
      const base = `${name}-${serial++}`;
      const sans = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', ...dnsNames.map((d) => `DNS:${d}`)].join(',');
      await writeFile(
        join(root, `${base}.ext`),
        `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`,
      );
      await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.ec.key`], root);
      // PKCS#8, as most servers and Go expect.
      await openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${base}.ec.key`, '-out', `${base}.key`], root);
      await openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${name}`, '-out', `${base}.csr`], root);
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          `${base}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-days',
          '2',
          '-sha256',
          '-extfile',
          `${base}.ext`,
          '-out',
          `${base}.crt`,
        ],
        root,
      );
      const certPathLeaf = join(root, `${base}.crt`);
      const keyPath = join(root, `${base}.key`);
      return {
        certPath: certPathLeaf,
        keyPath,
        cert: await readFile(certPathLeaf, 'utf8'),
        key: await readFile(keyPath, 'utf8'),
      };
    },
  };
}
