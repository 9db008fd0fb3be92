// Real redis-server and nats-server processes for the scale-out tests: started on free loopback ports, stopped in
// teardown. Debian packages: redis-server, nats-server (.ci/run installs both). Absent binaries make the
// tests skip, saying so. Also spawns TypeScript child processes (workers, shard servers) that can be killed.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const HOST = '127.0.0.1';

/** The path of a server binary on PATH or in the usual sbin folders (Debian puts nats-server in /usr/sbin). */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port nobody listens on right now (the kernel's pick for port 0 on the loopback address). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `probe` on a fresh connection succeeds; rejects after `ms`. */
async function waitFor(port: number, expect: RegExp, send: string | undefined, ms: number, proc: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited with code ${proc.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, HOST);
      let text = '';
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(500, () => done(false));
      socket.on('error', () => done(false));
      socket.on('connect', () => send && socket.write(send));
      socket.on('data', (d) => {
        text += d.toString();
        if (expect.test(text)) done(true);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`server on port ${port} did not answer within ${ms} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningServer {
  port: number;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function startServer(bin: string, args: string[], port: number, expect: RegExp, send: string | undefined, url: string): Promise<RunningServer> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.on('data', (d) => (output = (output + d).slice(-4000)));
  proc.stderr?.on('data', (d) => (output = (output + d).slice(-4000)));
  try {
    await waitFor(port, expect, send, 10_000, proc, () => output);
  } catch (e) {
    await stopProcess(proc);
    throw e;
  }
  return { port, url, process: proc, stop: () => stopProcess(proc) };
}

/** redis-server on a free loopback port, no persistence. Undefined when redis-server is not installed. */
export async function startRedis(): Promise<RunningServer | undefined> {
  const bin = findBinary('redis-server');
  if (!bin) return undefined;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-redis-'));
  const server = await startServer(
    bin,
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    port,
    /\+PONG/,
    'PING\r\n',
    `redis://${HOST}:${port}`,
  );
  const stop = server.stop;
  return { ...server, stop: async () => { await stop(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** nats-server on a free loopback port. `maxPayload` (bytes) lowers the server's message size limit. */
export async function startNats(maxPayload?: number): Promise<RunningServer | undefined> {
  const bin = findBinary('nats-server');
  if (!bin) return undefined;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-nats-'));
  const config = path.join(dir, 'nats.conf');
  fs.writeFileSync(config, `host: "${HOST}"\nport: ${port}\n${maxPayload ? `max_payload: ${maxPayload}\n` : ''}`);
  const server = await startServer(bin, ['-c', config], port, /^INFO /, undefined, `nats://${HOST}:${port}`);
  const stop = server.stop;
  return { ...server, stop: async () => { await stop(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** The loader flags tap runs this test with, so that a child process can run a TypeScript file too. */
function typescriptLoaderArgs(): string[] {
  return process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a.includes('ts-node'));
}

export interface Child {
  process: ChildProcess;
  /** Resolves with the next IPC message for which `match` holds. */
  next<T = Record<string, unknown>>(match: (m: T) => boolean, ms?: number): Promise<T>;
  send(message: unknown): void;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs a TypeScript file in a child Node process with an IPC channel; env adds to the environment. */
export function spawnTs(file: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [...typescriptLoaderArgs(), file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: unknown[] = [];
  const waiters: { match: (m: never) => boolean; resolve: (m: never) => void }[] = [];
  proc.on('message', (m) => {
    const i = waiters.findIndex((w) => w.match(m as never));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m as never);
    else messages.push(m);
  });
  return {
    process: proc,
    next<T>(match: (m: T) => boolean, ms = 20_000) {
      const i = messages.findIndex((m) => match(m as T));
      if (i >= 0) return Promise.resolve(messages.splice(i, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child ${file}: no matching message within ${ms} ms`)), ms);
        const onExit = (code: number | null) => reject(new Error(`child ${file} exited (${code}) before the message came`));
        proc.once('exit', onExit);
        waiters.push({
          match: match as (m: never) => boolean,
          resolve: ((m: T) => {
            clearTimeout(timer);
            proc.off('exit', onExit);
            resolve(m);
          }) as (m: never) => void,
        });
      });
    },
    send(message: unknown) {
      proc.send?.(message as never);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      await exited;
    },
  };
}
