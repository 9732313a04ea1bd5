// A credential read from the config or the environment. It is kept out of every log line,
// error message and JSON dump by printing as [redacted]; only the upstream client reveals it.
import { inspect } from 'node:util';
import type { Config } from './types.js';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}

/**
 * The inline secrets of a config by key path: a config crosses to a node's serving processes
 * as JSON, where a Secret is `[redacted]`; these travel beside it and `withSecrets` puts them
 * back. Never logged.
 */
export function secretsOf(config: Config): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of config.mirrors) if (m.password?.kind === 'value') out[m.keyPath] = m.password.secret.reveal();
  return out;
}

/** The config with the secrets of `secretsOf` in place again (a serving process's view). */
export function withSecrets(config: Config, secrets: Readonly<Record<string, string>>): Config {
  return {
    ...config,
    mirrors: config.mirrors.map((m) => {
      const value = secrets[m.keyPath];
      return m.password?.kind === 'value' && value !== undefined
        ? { ...m, password: { kind: 'value', secret: new Secret(value) } }
        : m;
    }),
  };
}
