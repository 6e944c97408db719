/** Expanding data file specs (a path, a glob, or a list of them) into concrete files. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../base/errors.js';

export type FileFormat = 'parquet' | 'arrow';

export function detectFormat(file: string, declared: 'auto' | FileFormat = 'auto'): FileFormat {
  if (declared !== 'auto') return declared;
  const ext = path.extname(file).toLowerCase();
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.arrow' || ext === '.feather' || ext === '.ipc' || ext === '.arrows') return 'arrow';
  throw new DataError(`${file}: cannot tell the format from the extension \`${ext}\`: expected .parquet/.pq or .arrow/.feather/.ipc (or set data.format)`);
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else out.push(full);
  }
}

/** Resolves files for a config key (named in errors); globs match in sorted order. */
export function expandFiles(spec: string | string[], what: string): string[] {
  const specs = Array.isArray(spec) ? spec : [spec];
  const files: string[] = [];
  for (const s of specs) {
    if (!/[*?]/.test(s)) {
      if (!existsSync(s)) throw new DataError(`${what}: file not found: ${s}`);
      if (statSync(s).isDirectory()) throw new DataError(`${what}: ${s} is a folder; name the files or use a glob such as ${path.join(s, '*.parquet')}`);
      files.push(s);
      continue;
    }
    const firstWild = s.search(/[*?]/);
    const base = s.slice(0, s.lastIndexOf('/', firstWild) + 1) || '.';
    if (!existsSync(base)) throw new DataError(`${what}: folder not found for glob ${s}`);
    const re = globToRegExp(path.resolve(s));
    const found: string[] = [];
    walk(path.resolve(base), found);
    const matched = found.filter((f) => re.test(f)).sort();
    if (matched.length === 0) throw new DataError(`${what}: no file matches ${s}`);
    files.push(...matched);
  }
  return files;
}
