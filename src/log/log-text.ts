// A pino transport (it runs on its own thread) that turns JSON lines into text lines:
//   2026-11-22T10:00:00.000Z INFO  request method=GET status=200 digest=sha256:… ms=1.2
import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'svc']);

export function formatLine(line: string): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof obj.time === 'number' ? new Date(obj.time).toISOString() : '';
  const level = LEVELS[Number(obj.level)] ?? String(obj.level);
  const fields = Object.entries(obj)
    .filter(([k, v]) => !SKIP.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return `${time} ${level} ${String(obj.msg ?? '')}${fields.length ? ' ' + fields.join(' ') : ''}`;
}

export default function textTransport(opts: { dest?: number | string }): Writable {
  const out = typeof opts.dest === 'string' ? createWriteStream(opts.dest, { flags: 'a' }) : process.stdout;
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      const text = lines
        .filter((l) => l.length > 0)
        .map((l) => formatLine(l) + '\n')
        .join('');
      if (text.length === 0 || out.write(text)) cb();
      else out.once('drain', () => cb());
    },
    final(cb) {
      if (rest.length > 0) out.write(formatLine(rest) + '\n');
      cb();
    },
  });
}
