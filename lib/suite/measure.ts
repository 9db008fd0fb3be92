// Timing, memory and machine facts for the benchmark suite.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { packageRoot } from '../native';
import { simdLevel } from '../quiver';
import type { MachineInfo } from './types';

/**
 * Calls per second of `fn`, the best of `rounds` rounds that each call it for at least `minSeconds` (and at
 * least once), after one untimed warm-up call. The best round is the one other processes disturbed least,
 * which on a shared machine is the steadiest estimate. `fn` receives the call number. A function that returns
 * a promise is awaited; a synchronous one runs in a plain loop, so microtask overhead never inflates fast
 * synchronous calls.
 */
export async function callsPerSecond(fn: (call: number) => unknown, minSeconds: number, rounds = 1): Promise<number> {
  const first = fn(0);
  const isAsync = first instanceof Promise;
  if (isAsync) await first;
  const limit = minSeconds * 1000;
  let calls = 0;
  let best = 0;
  for (let round = 0; round < rounds; round++) {
    let done = 0;
    const start = performance.now();
    let elapsed = 0;
    if (isAsync) {
      do {
        await fn(++calls);
        done++;
        elapsed = performance.now() - start;
      } while (elapsed < limit);
    } else {
      do {
        fn(++calls);
        done++;
        elapsed = performance.now() - start;
      } while (elapsed < limit);
    }
    best = Math.max(best, (done * 1000) / elapsed);
  }
  return best;
}

/** Seconds taken by an async step. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; seconds: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - start) / 1000 };
}

/** Resident set size now, after a collection when the process runs with --expose-gc (steadier deltas). */
export function residentBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

function quiverVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export function allThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** The facts a reader needs to weigh the numbers: CPU, cores, Node, date, SIMD level in use. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let cpu = cpus[0]?.model?.trim() ?? 'unknown';
  try {
    // os.cpus() can be empty in containers; /proc/cpuinfo still names the model.
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpu = line.split(':')[1].trim();
  } catch {
    // not Linux: keep os.cpus()'s answer
  }
  return {
    cpu,
    cores: allThreads(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    simd: simdLevel(),
    quiverVersion: quiverVersion(),
  };
}

/** Total size of the files under a directory (peers that persist their index measure it this way). */
export function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? directoryBytes(full) : fs.statSync(full).size;
  }
  return total;
}
