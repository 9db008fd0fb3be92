// The `quiver` command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';
import * as cliProgress from 'cli-progress';

import { DEFAULT_DEMO_SPECS, formatDemo, runDemo } from './demo';
import { formatOf, readVectors, type Vectors } from './io';
import { Index, type Metric, type TrainProgress } from './quiver';
import { kRecallAt, oneRecallAt } from './recall';

/** A failure the user can fix (missing file, wrong format): printed without a stack, exit code 1. */
class CliError extends Error {}

async function loadVectorFile(file: string, what: string): Promise<Vectors> {
  if (!fs.existsSync(file)) throw new CliError(`${what}: no such file ${JSON.stringify(file)}`);
  if (/\.(hdf5|h5)$/i.test(file)) {
    // ann-benchmarks files: the base set is "train"; queries are read by `quiver search` from "test".
    const { loadHdf5Dataset } = await import('./suite/datasets');
    const ds = await loadHdf5Dataset(file);
    return { data: what === 'queries' ? ds.queries : ds.base, n: what === 'queries' ? ds.queryCount : ds.baseCount, dim: ds.dim, format: 'fvecs' };
  }
  if (!formatOf(file)) {
    throw new CliError(`${what}: cannot tell the format of ${JSON.stringify(file)}; expected .fvecs, .bvecs, .ivecs, .fbin, .u8bin, .i8bin, .ibin or .hdf5`);
  }
  return readVectors(file);
}

function progressBar(enabled: boolean, format: string) {
  return enabled && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format, hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
}

function writeResults(file: string, ids: BigInt64Array, k: number): void {
  const nq = ids.length / k;
  if (file.endsWith('.json')) {
    const rows = Array.from({ length: nq }, (_, q) => Array.from(ids.subarray(q * k, (q + 1) * k), (id) => (id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : String(id))));
    fs.writeFileSync(file, JSON.stringify(rows) + '\n');
    return;
  }
  if (!file.endsWith('.ivecs')) throw new CliError(`--out: expected a .ivecs or .json file name, got ${JSON.stringify(file)}`);
  const buf = Buffer.alloc(nq * (4 + 4 * k));
  for (let q = 0; q < nq; q++) {
    buf.writeInt32LE(k, q * (4 + 4 * k));
    for (let i = 0; i < k; i++) {
      const id = ids[q * k + i];
      if (id > 2147483647n || id < -2147483648n) throw new CliError(`--out: id ${id} does not fit .ivecs (int32); use .json`);
      buf.writeInt32LE(Number(id), q * (4 + 4 * k) + 4 + 4 * i);
    }
  }
  fs.writeFileSync(file, buf);
}

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
    .option('--nprobe <n>', 'lists visited by IVF specs', integer('--nprobe', 1), 16)
    .option('--json', 'print the results as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (opts: { specs: string; seed: number; threads: number; refine: number; nprobe: number; json?: boolean; progress: boolean }) => {
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
        nprobe: opts.nprobe,
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
      else console.log(formatDemo(result, opts.refine, opts.nprobe));
    });

  program
    .command('build')
    .description('Train an index on a vector file, add the vectors and save it')
    .argument('<vectors>', 'base vectors: .fvecs .bvecs .fbin .u8bin .i8bin, or an ann-benchmarks .hdf5 (its "train" set)')
    .requiredOption('--spec <spec>', 'index spec, e.g. "PQ16x8", "IVF1024,PQ16x8", "PQ32x4fs"')
    .requiredOption('-o, --out <file>', 'index file to write (e.g. index.qvr)')
    .addOption(new Option('--metric <metric>', 'distance').choices(['l2', 'ip', 'cosine']).default('l2'))
    .option('--train-count <n>', 'train on the first n vectors (default: all)', integer('--train-count', 1))
    .option('--seed <n>', 'training seed', integer('--seed', 0), 1234)
    .option('--threads <n>', 'threads (0 = all)', integer('--threads', 0), 0)
    .option('--no-progress', 'no progress bars')
    .action(async (file: string, opts: { spec: string; out: string; metric: Metric; trainCount?: number; seed: number; threads: number; progress: boolean }) => {
      const v = await loadVectorFile(file, 'vectors');
      const data = v.data as Float32Array;
      const trainCount = Math.min(opts.trainCount ?? v.n, v.n);
      const bar = progressBar(opts.progress, 'training [{bar}] {phase} {stage}/{stages} it {iteration}');
      bar?.start(1, 0, { phase: '', stage: 0, stages: 0, iteration: 0 });
      const t0 = performance.now();
      const index = await Index.train(opts.spec, data.subarray(0, trainCount * v.dim), {
        dim: v.dim,
        metric: opts.metric,
        seed: opts.seed,
        threads: opts.threads,
        onProgress: (p: TrainProgress) => {
          bar?.setTotal(p.stages * p.iterations);
          bar?.update(p.stage * p.iterations + p.iteration, { phase: p.phase, stage: p.stage + 1, stages: p.stages, iteration: p.iteration });
        },
      });
      bar?.stop();
      const trained = performance.now();
      const chunk = 65536;
      const addBar = progressBar(opts.progress, 'adding [{bar}] {value}/{total} vectors');
      addBar?.start(v.n, 0);
      for (let first = 0; first < v.n; first += chunk) {
        const count = Math.min(chunk, v.n - first);
        await index.add(data.subarray(first * v.dim, (first + count) * v.dim), null, { threads: opts.threads });
        addBar?.update(first + count);
      }
      addBar?.stop();
      await index.save(opts.out);
      console.log(
        `${index.spec}: ${index.size} vectors of dimension ${index.dim} (${index.metric}), ${index.codeSize} bytes/vector; ` +
          `trained on ${trainCount} in ${((trained - t0) / 1000).toFixed(2)} s, added in ${((performance.now() - trained) / 1000).toFixed(2)} s; wrote ${opts.out}`,
      );
    });

  program
    .command('search')
    .description('Search an index with a query file; print recall against ground truth and write the results')
    .argument('<index>', 'index file written by "quiver build" or Index.save()')
    .argument('<queries>', 'query vectors (.fvecs .bvecs .fbin .u8bin, or .hdf5 for its "test" set)')
    .option('-k, --k <n>', 'results per query', integer('-k', 1), 10)
    .option('--nprobe <n>', 'IVF lists to visit', integer('--nprobe', 1), 1)
    .option('--refine <n>', 're-score k × refine candidates exactly (",Refine" indexes)', integer('--refine', 1), 1)
    .option('--threads <n>', 'threads (0 = all)', integer('--threads', 0), 0)
    .option('--gt <file>', 'ground truth (.ivecs/.ibin): print 1-recall@1/@10 and k-recall@k')
    .option('--out <file>', 'write the ids as .ivecs or .json')
    .option('--mmap', 'map the index file instead of reading it')
    .action(async (indexFile: string, queryFile: string, opts: { k: number; nprobe: number; refine: number; threads: number; gt?: string; out?: string; mmap?: boolean }) => {
      if (!fs.existsSync(indexFile)) throw new CliError(`index: no such file ${JSON.stringify(indexFile)}`);
      const index = await Index.load(indexFile, { mmap: opts.mmap === true });
      const q = await loadVectorFile(queryFile, 'queries');
      if (q.dim !== index.dim) throw new CliError(`queries: dimension ${q.dim} does not match the index (${index.dim})`);
      const t0 = performance.now();
      const r = await index.search(q.data as Float32Array, opts.k, { nprobe: opts.nprobe, refine: opts.refine, threads: opts.threads });
      const seconds = (performance.now() - t0) / 1000;
      console.log(`${q.n} queries, k=${opts.k}, ${index.spec}: ${(q.n / seconds).toFixed(0)} queries/s (one batch)`);
      if (opts.gt) {
        const gt = await loadVectorFile(opts.gt, 'ground truth');
        if (!(gt.data instanceof Int32Array) || gt.n < q.n) throw new CliError(`--gt: expected ${q.n} rows of int32 neighbour ids (.ivecs/.ibin)`);
        const parts = [1, 10, 100].filter((x) => x <= opts.k).map((x) => `1-recall@${x} ${oneRecallAt(r.ids, opts.k, gt.data, gt.dim, x).toFixed(4)}`);
        const kk = Math.min(opts.k, gt.dim);
        parts.push(`${kk}-recall@${kk} ${kRecallAt(r.ids, opts.k, gt.data, gt.dim, kk).toFixed(4)}`);
        console.log(parts.join(', '));
      }
      if (opts.out) {
        writeResults(opts.out, r.ids, opts.k);
        console.log(`wrote ${opts.out}`);
      }
    });

  program
    .command('bench')
    .description('Run the benchmark suite: recall, q/s, build time, bytes/vector and memory, against peers in the same run')
    .option('--dataset <name>', 'a preset (sift10k, fashion-mnist), an ann-benchmarks .hdf5 file, or a base vector file', 'sift10k')
    .option('--queries <file>', 'queries, when --dataset is a base vector file')
    .option('--gt <file>', 'ground truth (.ivecs/.ibin), when --dataset is a base vector file')
    .addOption(new Option('--metric <metric>', 'metric, when --dataset is a base vector file').choices(['l2', 'ip', 'cosine']).default('l2'))
    .option('--specs <list>', 'quiver specs separated by ";"', 'Flat;PQ16x8;PQ32x4fs;IVF64,PQ16x8')
    .option('--peers <list>', 'comma-separated peers: usearch, hnswlib, lancedb, faiss (those not installed are skipped), or none', 'none')
    .option('--nprobe <list>', 'nprobe sweep for IVF specs', '4,16,64')
    .option('--refine <list>', 'refine sweep for ",Refine" specs', '1,4,16')
    .option('-k, --k <n>', 'results per query', integer('-k', 1), 10)
    .option('--query-count <n>', 'use only the first n queries', integer('--query-count', 1))
    .option('--seed <n>', 'training seed', integer('--seed', 0), 1234)
    .option('--out <dir>', 'folder for results.json, results.md and results.svg', 'quiver-bench')
    .option('--no-progress', 'no progress display')
    .action(async (opts: { dataset: string; queries?: string; gt?: string; metric: Metric; specs: string; peers: string; nprobe: string; refine: string; k: number; queryCount?: number; seed: number; out: string; progress: boolean }) => {
      const intList = (flag: string, value: string) => {
        const list = value.split(',').map((x) => Number(x.trim()));
        if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
          throw new RangeError(`${flag}: expected a comma-separated list of positive integers, got ${JSON.stringify(value)}`);
        }
        return list;
      };
      const suite = await import('./suite');
      let dataset;
      try {
        dataset = await suite.loadDataset(opts.dataset, { queries: opts.queries, groundTruth: opts.gt, metric: opts.metric, queryCount: opts.queryCount });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_QUIVER_DATASET_UNAVAILABLE') throw new CliError((error as Error).message);
        throw error;
      }
      const peerNames = opts.peers === 'none' ? [] : opts.peers.split(',').map((x) => x.trim()).filter(Boolean);
      const faissScript = path.join(__dirname, '..', '..', 'bench', 'peers', 'faiss_peer.py');
      const peers = suite.createPeers(
        peerNames.filter((name) => name !== 'faiss' || fs.existsSync(faissScript)),
        { faiss: { script: faissScript } },
      );
      const result = await suite.runSuite({
        dataset,
        specs: opts.specs.split(';').map((x) => x.trim()).filter(Boolean),
        nprobe: intList('--nprobe', opts.nprobe),
        refine: intList('--refine', opts.refine),
        k: opts.k,
        seed: opts.seed,
        peers,
        onEvent: opts.progress && process.stderr.isTTY ? suite.suiteProgress() : undefined,
      });
      const files = suite.writeSuiteOutputs(result, path.join(opts.out, dataset.name));
      console.log(suite.formatMarkdown(result));
      console.error(`wrote ${Object.values(files).join(', ')}`);
      for (const skipped of result.skipped) console.error(`skipped ${skipped.system}${skipped.spec ? ' ' + skipped.spec : ''}: ${skipped.reason}`);
    });

  program
    .command('export')
    .description('Export an index for other engines: a faiss index file, and/or its centroids and codebooks as .npy files')
    .argument('<index>', 'quiver index file')
    .option('--faiss <file>', 'write a faiss index file (faiss 1.7.3 and later read it; PQ, OPQ, RQ, IVF-PQ, IVF-RQ)')
    .option('--codebooks <dir>', 'write the centroids and codebooks as float32 .npy files plus manifest.json')
    .action(async (indexFile: string, opts: { faiss?: string; codebooks?: string }) => {
      if (!opts.faiss && !opts.codebooks) throw new CliError('export: give --faiss <file>, --codebooks <dir> or both');
      if (!fs.existsSync(indexFile)) throw new CliError(`index: no such file ${JSON.stringify(indexFile)}`);
      const index = await Index.load(indexFile, { mmap: true });
      if (opts.faiss) {
        await index.saveFaiss(opts.faiss);
        console.log(`${index.spec}: wrote ${opts.faiss} (faiss index file, ${index.size} vectors)`);
      }
      if (opts.codebooks) {
        const manifest = await index.exportCodebooks(opts.codebooks);
        const arrays = manifest.arrays.map((a) => `${a.name} [${a.shape.join(', ')}]`).join(', ');
        console.log(`${index.spec}: wrote ${arrays} and manifest.json to ${opts.codebooks}`);
      }
    });

  program
    .command('import')
    .description('Convert a faiss index file (IndexPQ, OPQ + IndexPQ, IndexResidualQuantizer, IVF-PQ, IVF-RQ) to a quiver index file')
    .argument('<faiss-file>', 'faiss index file (faiss.write_index)')
    .requiredOption('-o, --out <file>', 'quiver index file to write')
    .action(async (faissFile: string, opts: { out: string }) => {
      if (!fs.existsSync(faissFile)) throw new CliError(`faiss-file: no such file ${JSON.stringify(faissFile)}`);
      const index = await Index.loadFaiss(faissFile);
      await index.save(opts.out);
      console.log(`${index.spec}: ${index.size} vectors of dimension ${index.dim} (${index.metric}); wrote ${opts.out}`);
    });

  program
    .command('info')
    .description('Describe an index file: spec, size, memory, format version')
    .argument('<index>', 'index file')
    .option('--json', 'print JSON')
    .action(async (indexFile: string, opts: { json?: boolean }) => {
      if (!fs.existsSync(indexFile)) throw new CliError(`index: no such file ${JSON.stringify(indexFile)}`);
      const head = Buffer.alloc(8);
      const fd = fs.openSync(indexFile, 'r');
      try {
        fs.readSync(fd, head, 0, 8, 0);
      } finally {
        fs.closeSync(fd);
      }
      const magic = head.toString('latin1', 0, 4);
      if (magic !== 'QVRI') throw new CliError(`index: ${JSON.stringify(indexFile)} is not a quiver index file (magic ${JSON.stringify(magic)})`);
      const index = await Index.load(indexFile, { mmap: true });
      const fileBytes = fs.statSync(indexFile).size;
      const info = {
        file: path.resolve(indexFile),
        formatVersion: head.readUInt32LE(4),
        spec: index.spec,
        dim: index.dim,
        metric: index.metric,
        vectors: index.size,
        codeBytesPerVector: index.codeSize,
        fileBytes,
        bytesPerVectorOnDisk: index.size ? +(fileBytes / index.size).toFixed(2) : 0,
      };
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else for (const [key, value] of Object.entries(info)) console.log(`${key.padEnd(22)}${value}`);
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
    // Bad values that reached the API (an invalid spec, k out of range) are usage errors too.
    if (error instanceof RangeError || error instanceof TypeError) {
      process.stderr.write(`quiver: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`quiver: ${e.message ?? String(error)}${error instanceof CliError || e.code ? '' : `\n${(error as Error).stack ?? ''}`}\n`);
    return 1;
  }
}
