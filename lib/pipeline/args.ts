// Argument checks shared by the pipeline modules, in the style of ../validate.ts: every failure names the
// argument, says what was expected and what came; TypeError for a wrong kind of value, RangeError for a right
// kind with a wrong size or value.
import { describe } from '../validate';

export { describe, expectInteger, expectOptions, expectString, optionalInteger } from '../validate';

export function expectFunction<T extends (...args: never[]) => unknown>(value: unknown, name: string): T {
  if (typeof value !== 'function') throw new TypeError(`${name}: expected a function, got ${describe(value)}`);
  return value as T;
}

export function expectBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name}: expected true or false, got ${describe(value)}`);
  return value;
}

/** A finite number in [min, max]. */
export function expectNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number') throw new TypeError(`${name}: expected a number, got ${describe(value)}`);
  if (!Number.isFinite(value) || value < min || value > max) {
    const range =
      min === -Infinity && max === Infinity ? 'a finite number' : `a finite number from ${min} to ${max}`;
    throw new RangeError(`${name}: expected ${range}, got ${describe(value)}`);
  }
  return value;
}

export function expectArray<T = unknown>(value: unknown, name: string, nonEmpty = true): readonly T[] {
  if (!Array.isArray(value)) throw new TypeError(`${name}: expected an array, got ${describe(value)}`);
  if (nonEmpty && value.length === 0) throw new RangeError(`${name}: expected a non-empty array, got an empty one`);
  return value as T[];
}

/** A Float32Array of exactly `length` finite values (one vector). */
export function expectVector(value: unknown, name: string, length: number): Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name}: expected a Float32Array of ${length} floats, got ${describe(value)}`);
  }
  if (value.length !== length) throw new RangeError(`${name}: expected ${length} floats, got ${value.length}`);
  expectFinite(value, name);
  return value;
}

/** n × dim finite floats, n ≥ 1; returns n. */
export function expectMatrix(value: unknown, name: string, dim: number): number {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name}: expected a Float32Array of n × ${dim} floats, got ${describe(value)}`);
  }
  if (value.length === 0 || value.length % dim !== 0) {
    throw new RangeError(
      `${name}: expected a non-empty Float32Array whose length is a multiple of dim ${dim}, got length ${value.length}`,
    );
  }
  expectFinite(value, name);
  return value.length / dim;
}

function expectFinite(value: Float32Array, name: string): void {
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw new RangeError(`${name}: expected finite numbers, got ${value[i]} at element ${i}`);
  }
}

/** One id: a bigint in the int64 range (quiver stores ids as int64; -1n marks padding, so it is refused). */
export function expectId(value: unknown, name: string): bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${name}: expected a bigint id, got ${describe(value)}`);
  if (value < 0n || value > 0x7fffffffffffffffn) {
    throw new RangeError(`${name}: expected an id from 0n to 2^63-1, got ${value}n`);
  }
  return value;
}

export function expectIds(value: unknown, name: string): BigInt64Array {
  if (!(value instanceof BigInt64Array)) throw new TypeError(`${name}: expected a BigInt64Array of ids, got ${describe(value)}`);
  return value;
}

/** A non-empty string naming one of `choices`. */
export function expectChoice<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string') {
    throw new TypeError(`${name}: expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  if (!choices.includes(value as T)) {
    throw new RangeError(`${name}: expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}
