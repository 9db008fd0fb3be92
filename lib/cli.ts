// The `quiver` command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage.
import { Command, InvalidArgumentError } from 'commander';
import * as cliProgress from 'cli-progress';

import { DEFAULT_DEMO_SPECS, formatDemo, runDemo } from './demo';

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('quiver')
    .description('Compressed-domain approximate nearest-neighbour search')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('demo')
    .description('Train, search and measure on the embedded SIFT slice (9 900 base vectors, 100 held-out queries)')
    .option('--specs <list>', 'comma-free list of specs separated by ";"', DEFAULT_DEMO_SPECS.join(';'))
    .option('--seed <n>', 'training seed', integer('--seed', 0), 1234)
    .option('--threads <n>', 'threads (0 = all)', integer('--threads', 0), 0)
    .option('--refine <n>', 'refine factor for specs ending in ",Refine"', integer('--refine', 1), 10)
    .option('--json', 'print the results as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (opts: { specs: string; seed: number; threads: number; refine: number; json?: boolean; progress: boolean }) => {
      const showBar = opts.progress && !opts.json && process.stderr.isTTY;
      const bar = new cliProgress.SingleBar(
        { format: 'training {spec} [{bar}] {phase} {stage}/{stages} it {iteration} mse {mse}', hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      const result = await runDemo({
        specs: opts.specs.split(';').map((s) => s.trim()).filter(Boolean),
        seed: opts.seed,
        threads: opts.threads,
        refine: opts.refine,
        onTrainStart: (spec) => {
          if (showBar) bar.start(1, 0, { spec, phase: '', stage: 0, stages: 0, iteration: 0, mse: '' });
          else if (!opts.json) process.stderr.write(`training ${spec}…\n`);
        },
        onProgress: (spec, p) => {
          if (!showBar) return;
          bar.setTotal(p.stages * p.iterations);
          bar.update(p.stage * p.iterations + p.iteration, {
            spec, phase: p.phase, stage: p.stage + 1, stages: p.stages, iteration: p.iteration, mse: p.error.toFixed(1),
          });
        },
        onTrainEnd: () => {
          if (showBar) bar.stop();
        },
      });
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else console.log(formatDemo(result, opts.refine));
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    if (e.code?.startsWith('commander.')) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`quiver: ${e.message ?? String(error)}\n`);
    return 1;
  }
}
