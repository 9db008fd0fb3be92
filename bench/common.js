// Helpers shared by the Node benchmark scripts (accuracy.js, encode-time.js, pca-energy.js, run-suite.js,
// save-index.js, visual-search.js, ab-search.js): loading the built package, CLI integer parsing, skipping a
// dataset that is not on this machine, naming the build measured, and writing a Markdown report.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { InvalidArgumentError } = require('commander');

const ROOT = path.join(__dirname, '..');

/** A module of the built package (dist/cjs/<entry>); exits with a hint when the build is missing. */
function loadDist(tool, entry) {
  const file = path.join(ROOT, 'dist', 'cjs', entry);
  if (!fs.existsSync(file)) {
    console.error(`${tool}: ${file} is missing; build first with "npm run build"`);
    process.exit(1);
  }
  return require(file);
}

/** A commander parser for an integer option of at least `min`. */
function integerOption(flag, min = 1) {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      const expected = min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
      throw new InvalidArgumentError(`${flag} must be ${expected}, got "${value}"`);
    }
    return n;
  };
}

/** The dataset, or undefined (after saying so on stderr) when its files are not on this machine. */
async function loadDatasetOrSkip(suite, name, options) {
  try {
    return await suite.loadDataset(name, options);
  } catch (error) {
    if (error.code === 'ERR_QUIVER_DATASET_UNAVAILABLE') {
      console.error(`skip dataset ${name}: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}

/** The quiver build measured: an explicit QUIVER_ADDON file, or the checkout's commit. */
function engineName() {
  if (process.env.QUIVER_ADDON) return `addon ${process.env.QUIVER_ADDON}`;
  try {
    const { execFileSync } = require('node:child_process');
    return `commit ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()}`;
  } catch {
    return 'unknown build';
  }
}

/** Writes `lines` (a Markdown report) to `file`, creating its folder; nothing when file is undefined. */
function writeReport(file, lines) {
  if (!file) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Runs an async main() and exits with its code (1 and the stack on an error). */
function runMain(main) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

module.exports = { ROOT, loadDist, integerOption, loadDatasetOrSkip, engineName, writeReport, runMain };
