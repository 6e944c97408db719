import { readFileSync } from 'node:fs';

let cached: string | undefined;
/** The package version, read from package.json next to the build. */
export function version(): string {
  if (!cached) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  }
  return cached;
}
