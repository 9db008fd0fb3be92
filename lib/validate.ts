// Argument checks for the public API. Every failure names the argument, says what was expected and what came:
// TypeError for a wrong kind of value, RangeError for a right kind with a wrong size or value.

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : `${value}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? 'TypedArray';
    return 'length' in value ? `${name} of length ${(value as unknown as { length: number }).length}` : name;
  }
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return value.constructor?.name ? `a ${value.constructor.name}` : 'an object';
  return typeof value;
}

export function expectString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name}: expected a string, got ${describe(value)}`);
  return value;
}

export function expectInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${name}: expected an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name}: expected an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

export function optionalInteger(value: unknown, name: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : expectInteger(value, name, min, max);
}

/** A Float32Array holding a whole number (≥ 1) of dim-long vectors; returns how many. */
export function expectVectors(value: unknown, name: string, dim: number): number {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name}: expected a Float32Array of n × ${dim} floats, got ${describe(value)}`);
  }
  if (value.length === 0 || value.length % dim !== 0) {
    throw new RangeError(
      `${name}: expected a non-empty Float32Array whose length is a multiple of dim ${dim}, got length ${value.length}`,
    );
  }
  return value.length / dim;
}

/** Rejects non-objects and keys the method does not know, so that a typo never passes silently. */
export function expectOptions<T extends object>(value: unknown, name: string, allowed: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${name}: expected an options object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${name}: unknown option "${key}"; expected one of ${allowed.join(', ')}`);
    }
  }
  return value as Partial<T>;
}
