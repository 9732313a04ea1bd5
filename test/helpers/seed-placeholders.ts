// The <placeholders> of the DTR documentation's configs (test/fixtures/seeds/), and what
// tests put in their place: the config unit tests and the config fuzzer fill them alike.
export const URL_PLACEHOLDERS: ReadonlyArray<readonly [string, string]> = [
  ['<dtr-url>:<dtr-port>', 'dtr.example.org:4443'],
  ['<dtr-url>', 'dtr.example.org'],
  ['<cache-url>', 'cache.example.org'],
  ['<asia-cache-url>', 'asia-cache.example.org:5000'],
  ['<Externally-reachable address for the origin registry>', 'https://dtr.example.org'],
  ['<Externally-reachable address for upstream content cache A>', 'https://cache-a.example.org'],
  ['<Externally-reachable address for upstream content cache B>', 'https://cache-b.example.org:8443/'],
  ['<Absolute path to upstream content cache A certificate>', '/certs/cache-a-ca.pem'],
  ['<Absolute path to upstream content cache B certificate>', '/certs/cache-b-ca.pem'],
];
