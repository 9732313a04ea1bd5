// Reading an upstream's `WWW-Authenticate` (RFC 9110 §11.6.1): `Bearer realm="…",
// service="…",scope="…"` (distribution's token auth) or `Basic realm="…"`. Only the first
// challenge of a scheme we speak is used; anything unparsable is no challenge at all.

export interface Challenge {
  scheme: 'bearer' | 'basic';
  /** Lower-cased parameter names → values, quoted-pairs undone. */
  params: Readonly<Record<string, string>>;
}

// token68 or auth-param lists; a param value is a token or a quoted-string.
const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const SPACES = /[ \t]*/y;
// An unquoted value: a token in the RFC; up to the next comma or space here, since some
// servers leave URLs unquoted.
const BARE = /[^\s,"]+/y;
// A token68 credential after the scheme (RFC 9110 §11.2), as Negotiate sends: skipped.
const TOKEN68 = /[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|$)/y;

/** The first Bearer or Basic challenge in the header value(s), or null. */
export function parseChallenge(header: string | string[] | undefined): Challenge | null {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  for (const value of values) {
    for (const c of parseChallenges(value)) {
      const scheme = c.scheme.toLowerCase();
      if (scheme === 'bearer' || scheme === 'basic') return { scheme, params: c.params };
    }
  }
  return null;
}

function parseChallenges(text: string): Array<{ scheme: string; params: Record<string, string> }> {
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  let i = 0;
  const take = (re: RegExp): string | null => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (m === null) return null;
    i = re.lastIndex;
    return m[0];
  };
  const quoted = (): string | null => {
    let v = '';
    for (i++; i < text.length; i++) {
      const ch = text[i];
      if (ch === '\\' && i + 1 < text.length) v += text[++i];
      else if (ch === '"') {
        i++;
        return v;
      } else v += ch;
    }
    return null;
  };
  while (i < text.length) {
    take(SPACES);
    while (text[i] === ',') {
      i++;
      take(SPACES);
    }
    const scheme = take(TOKEN);
    if (scheme === null) break;
    const params: Record<string, string> = {};
    out.push({ scheme, params });
    take(SPACES);
    if (take(TOKEN68) !== null) continue;
    for (;;) {
      take(SPACES);
      const start = i;
      const name = take(TOKEN);
      take(SPACES);
      if (name === null || text[i] !== '=') {
        // Not a parameter: the next challenge's scheme starts here.
        i = start;
        break;
      }
      i++;
      take(SPACES);
      const value = text[i] === '"' ? quoted() : take(BARE);
      if (value === null) return out;
      params[name.toLowerCase()] = value;
      take(SPACES);
      if (text[i] !== ',') break;
      i++;
    }
  }
  return out;
}
