// A small client of the origin's content-cache API (docs/protocol.md §7): Basic admin
// credentials, JSON both ways, and the answers that stop every workflow (unreachable,
// credentials refused) turned into RegisterErrors here, once.
import type { SecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { messageOf } from '../../errors/inspect.js';
import { RegisterError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface ApiAnswer {
  status: number;
  /** The parsed body, or null when it is empty or not JSON. */
  json: unknown;
  text: string;
}

export class OriginApi {
  /** The origin's base URL, without a trailing slash. */
  readonly base: string;
  readonly #agent: Agent;
  readonly #auth: string;
  readonly #username: string;

  constructor(origin: string, credentials: Credentials, secureContext: SecureContext) {
    this.base = origin.replace(/\/+$/, '');
    this.#agent = new Agent({
      connect: { secureContext, timeout: 10_000 },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    this.#username = credentials.username;
    this.#auth = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  }

  /** Any answer but 401/403 is returned for the workflow to judge. */
  async call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<ApiAnswer> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.base}${path}`, {
        method,
        dispatcher: this.#agent,
        headers: {
          authorization: this.#auth,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (err) {
      throw new RegisterError('ORIGIN', `cannot reach the origin at ${this.base}: ${messageOf(err)}`, { cause: err });
    }
    const text = await res.body.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: reported through `text`
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RegisterError(
        'CREDENTIALS',
        `the origin refused the credentials of ${this.#username} for ${method} ${path} (${res.statusCode}): admin credentials are required`,
      );
    }
    return { status: res.statusCode, json, text };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** The error for an answer a workflow did not expect: REFUSED for a 400, ORIGIN otherwise. */
export function unexpectedAnswer(what: string, answer: ApiAnswer): RegisterError {
  return new RegisterError(
    answer.status === 400 ? 'REFUSED' : 'ORIGIN',
    `${what}: the origin answered ${answer.status} ${originMessage(answer.text)}`,
  );
}

/** The registry-style error message in an origin's answer, or the start of its body. */
function originMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ message?: string; detail?: unknown }> };
    const first = parsed.errors?.[0];
    if (first !== undefined)
      return `(${[first.message, first.detail === undefined ? undefined : JSON.stringify(first.detail)].filter(Boolean).join(': ')})`;
  } catch {
    // not JSON
  }
  return text === '' ? '' : `(${text.slice(0, 200)})`;
}
