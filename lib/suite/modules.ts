// Finding optional packages (peers, h5wasm) without making them hard dependencies: a missing one becomes a
// message for the caller to print as a skip, never a crash at import time.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The folder of an installed package, searched the way require() would, or undefined. */
export function locatePackage(name: string): string | undefined {
  for (const dir of require.resolve.paths(name) ?? []) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
  }
  return undefined;
}

/** The installed version of a package (read from its package.json, which `exports` may hide from require). */
export function packageVersion(name: string): string {
  const dir = locatePackage(name);
  if (!dir) return 'not installed';
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** require(name), or the reason it failed, phrased for a skip message. */
export function optionalRequire<T>(name: string): { module: T } | { skip: string } {
  const dir = locatePackage(name);
  if (!dir) return { skip: `the npm package ${name} is not installed (npm install --save-dev ${name})` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return { module: require(dir) as T };
  } catch (error) {
    return { skip: `the npm package ${name} is installed but does not load here: ${(error as Error).message.split('\n')[0]}` };
  }
}
