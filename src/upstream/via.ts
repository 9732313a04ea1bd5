// The Via field a request carries upstream (RFC 9110 §7.6.3): what the client sent, with
// this node's hop added.

/**
 * At most this much of a received Via goes upstream. A client may send a Via almost as large
 * as our whole header limit; with our hop and the token added, the upstream (another cache
 * with the same limit) would refuse it with 431, and every such request would fail a fill.
 * §7.6.3 lets an intermediary combine received entries: the oldest are dropped, and a loop
 * of up to ~150 tiers is still caught by the tier it returns to.
 */
const FORWARDED_VIA_MAX = 4096;

export function forwardedVia(received: string | undefined, name: string): string {
  const ours = `1.1 ${name}`;
  if (received === undefined || received === '') return ours;
  if (received.length <= FORWARDED_VIA_MAX) return `${received}, ${ours}`;
  // Whole entries only: cut after the first comma of the last FORWARDED_VIA_MAX characters.
  const tail = received.slice(received.length - FORWARDED_VIA_MAX);
  const comma = tail.indexOf(',');
  const kept = comma < 0 ? '' : tail.slice(comma + 1).trim();
  return kept === '' ? ours : `${kept}, ${ours}`;
}
