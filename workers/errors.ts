// What a worker reports of a failure: errors lose their class crossing threads, so tasks
// return the errno code and the message as plain strings.
export function errCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'EIO';
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
