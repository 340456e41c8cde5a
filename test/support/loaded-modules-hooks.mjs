// Module hooks for loaded-modules.mjs. They run on Node's hooks thread, so each
// URL is written to the file at once: it is there even if the process is killed.
import { appendFileSync } from 'node:fs';

let file;

export function initialize(data) {
  file = data.file;
}

export async function load(url, context, nextLoad) {
  appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}
