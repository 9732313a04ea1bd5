// The piscina entry: the tasks worker threads run (piscina calls them by name), so hashing
// and disk writes never touch the main thread's event loop.
export { spool } from './spool-task.js';
export { hashFile } from './hash-file.js';
