// This node's name in the `Via` header of the requests it sends upstream (RFC 9110 §7.6.3):
// a request that comes back carrying it is a loop. One name per node, shared by all its
// serving processes: a loop that returns to another process of the node is still caught.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/types.js';

export function viaName(config: Config): string {
  const host = config.http.publicUrl !== null ? new URL(config.http.publicUrl).host : hostname();
  return `${host.replace(/[^A-Za-z0-9.:_-]/g, '-')}~${randomBytes(4).toString('hex')}`;
}
