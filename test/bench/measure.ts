/**
 * Process-level measurements for `npm run bench`: spawn a server, time it to the first 200 from
 * GET /readyz, read its resident memory when idle, and time SIGTERM to exit.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The bench's own failure (the thing measured misbehaved), as opposed to a missed goal. */
export class BenchFailure extends Error {
  constructor(
    message: string,
    readonly output = '',
  ) {
    super(message);
    this.name = 'BenchFailure';
  }
}

export interface RunOptions {
  /** Label used in messages, e.g. "PGlite (first start)". */
  readonly label: string;
  readonly args: readonly string[];
  /** Full environment of the child (the caller decides what is inherited). */
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  readonly port: number;
  readonly readyTimeoutMs: number;
  readonly idleMs: number;
  readonly pollIntervalMs: number;
  readonly stopTimeoutMs: number;
}

export interface RunResult {
  /** Spawn to the first HTTP 200 from GET /readyz. */
  readonly readyMs: number;
  /** VmRSS after idling, bytes. */
  readonly idleRssBytes: number;
  /** SIGTERM to process exit. */
  readonly stopMs: number;
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  /** Captured stdout+stderr (tail), for diagnostics. */
  readonly output: string;
}

/** Children still running, so an interrupted bench can kill them. */
export const liveChildren = new Set<ChildProcess>();

const OUTPUT_LIMIT = 64 * 1024;

class OutputTail {
  private text = '';
  append(chunk: Buffer | string, stream: string): void {
    const lines = String(chunk)
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => `[${stream}] ${line}\n`)
      .join('');
    this.text += lines;
    if (this.text.length > OUTPUT_LIMIT) this.text = this.text.slice(-OUTPUT_LIMIT);
  }
  toString(): string {
    return this.text;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * One GET without connection reuse (agent: false + Connection: close), so the bench never holds a
 * keep-alive socket that would delay the server's graceful shutdown. Resolves to the status code,
 * or undefined when the server is not accepting connections yet.
 */
function probe(port: number, path: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(res.statusCode));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('probe timed out')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Resident set size of a process, bytes: VmRSS from /proc, or `ps` where there is no /proc. */
export async function residentBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (match) return Number(match[1]) * 1024;
  } catch {
    // fall through to ps
  }
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('ps', ['-o', 'rss=', '-p', String(pid)], (error, out) => (error ? reject(error) : resolve(out)));
  });
  const kb = Number(stdout.trim());
  if (!Number.isFinite(kb) || kb <= 0) throw new Error(`cannot read the resident memory of pid ${pid}`);
  return kb * 1024;
}

function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Starts `process.execPath ...args`, measures spawn → first 200 on /readyz, idles, reads RSS, then
 * sends SIGTERM and measures the time to exit. Throws BenchFailure (with the child's output) when
 * the process dies early, never becomes ready, or ignores SIGTERM.
 */
export async function measureRun(options: RunOptions): Promise<RunResult> {
  const output = new OutputTail();
  const started = performance.now();
  const child = spawn(process.execPath, options.args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  child.stdout?.on('data', (chunk: Buffer) => output.append(chunk, 'stdout'));
  child.stderr?.on('data', (chunk: Buffer) => output.append(chunk, 'stderr'));
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  const exited = waitForExit(child);
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    liveChildren.delete(child);
  });

  const kill = async () => {
    if (!hasExited) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  try {
    // Spawn → first 200 from /readyz.
    let readyMs: number | undefined;
    let lastStatus: number | undefined;
    const deadline = started + options.readyTimeoutMs;
    while (readyMs === undefined) {
      if (spawnError) throw new BenchFailure(`${options.label}: could not spawn: ${spawnError.message}`);
      if (hasExited) {
        const { code, signal } = await exited;
        throw new BenchFailure(
          `${options.label}: the process exited (code ${code}, signal ${signal}) before /readyz answered 200`,
          output.toString(),
        );
      }
      const now = performance.now();
      if (now > deadline) {
        throw new BenchFailure(
          `${options.label}: /readyz did not answer 200 within ${options.readyTimeoutMs / 1000} s` +
            (lastStatus === undefined ? ' (never accepted a connection)' : ` (last status ${lastStatus})`),
          output.toString(),
        );
      }
      const status = await probe(options.port, '/readyz', Math.max(1, Math.min(5_000, deadline - now)));
      if (status === 200) {
        readyMs = performance.now() - started;
      } else {
        if (status !== undefined) lastStatus = status;
        await sleep(options.pollIntervalMs);
      }
    }

    // Idle, then resident memory.
    await sleep(options.idleMs);
    if (hasExited) {
      const { code, signal } = await exited;
      throw new BenchFailure(
        `${options.label}: the process exited (code ${code}, signal ${signal}) while idle`,
        output.toString(),
      );
    }
    const idleRssBytes = await residentBytes(child.pid!);

    // SIGTERM → exit.
    const stopStarted = performance.now();
    child.kill('SIGTERM');
    const timer = new AbortController();
    const stopped = await Promise.race([
      exited,
      sleep(options.stopTimeoutMs, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
    timer.abort();
    if (stopped === undefined) {
      throw new BenchFailure(
        `${options.label}: the process did not exit within ${options.stopTimeoutMs / 1000} s of SIGTERM`,
        output.toString(),
      );
    }
    const stopMs = performance.now() - stopStarted;
    return {
      readyMs,
      idleRssBytes,
      stopMs,
      exitCode: stopped.code,
      exitSignal: stopped.signal,
      output: output.toString(),
    };
  } finally {
    await kill();
  }
}
