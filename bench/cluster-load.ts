/**
 * The cluster benchmark's load generator: the same client code for every system, written to
 * match ../shared/bench/kv-bench.mjs (the independent client issue 11's table was measured
 * with): `clients` closed-loop workers on one HTTP/1.1 keep-alive agent, each with one
 * request in flight; a warm-up of max(100, 4 x clients) requests that are not measured; the
 * latency of a request runs from its start to the last byte of its answer. It stops issuing
 * after `seconds` (kv-bench stops after N requests; a fixed time keeps rounds comparable).
 *
 * It also reads the servers' CPU time (utime + stime from /proc/<pid>/stat) across the
 * measured phase, for the CPU each operation costs the servers.
 */
import { readFileSync } from "node:fs";
import http from "node:http";

export interface HttpRequest {
  method: string;
  path: string;
  body?: Buffer | string;
  headers: Record<string, string>;
}

export interface LoadSpec {
  /** The server's origin, e.g. http://127.0.0.1:7101. */
  url: string;
  clients: number;
  seconds: number;
  /** Requests before the measured phase (not measured); kv-bench's default: max(100, 4 x clients). */
  warmupRequests?: number;
  /** Stop the measured phase after this many requests too (default: only `seconds` bounds it). */
  requestsMax?: number;
  /** The i-th request of the run (i counts from 0 over all workers), for worker `worker`. */
  request: (i: number, worker: number) => HttpRequest;
  /** "ok", "miss" (a get of an absent key: counted, not an error) or an error description. */
  check: (status: number, body: Buffer) => string;
  /** Server processes whose CPU time is counted. */
  serverPids: number[];
}

export interface LoadResult {
  ops: number;
  errors: Record<string, number>;
  seconds: number;
  opsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
  /** Completions in each whole second of the measured phase. */
  perSecondOps: number[];
  /** Server CPU (all processes, user + system) per operation, in µs. */
  serverCpuUsPerOp: number;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** One request on a keep-alive `agent`, with the timeout every benchmark request has. */
export function send(agent: http.Agent, origin: URL, request: HttpRequest): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: origin.hostname, port: origin.port, method: request.method, path: request.path, agent, headers: request.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(request.body);
  });
}

/** utime + stime of the processes, in clock ticks (USER_HZ, 100 on Linux). */
function cpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process is gone
    }
  }
  return ticks;
}
const CLOCK_TICKS_PER_SECOND = 100;

interface Phase {
  latenciesUs: number[];
  errors: Map<string, number>;
  perSecond: number[];
  seconds: number;
}

/** Runs the workers until `count` requests were issued or `seconds` passed. */
async function phase(agent: http.Agent, spec: LoadSpec, count: number, seconds: number): Promise<Phase> {
  const origin = new URL(spec.url);
  const result: Phase = { latenciesUs: [], errors: new Map(), perSecond: [], seconds: 0 };
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  let next = 0;
  const worker = async (id: number): Promise<void> => {
    while (next < count && process.hrtime.bigint() < deadline) {
      const request = spec.request(next++, id);
      const before = process.hrtime.bigint();
      let verdict: string;
      try {
        const answer = await send(agent, origin, request);
        verdict = spec.check(answer.status, answer.body);
      } catch (error) {
        verdict = String((error as NodeJS.ErrnoException).code ?? (error as Error).message);
      }
      const after = process.hrtime.bigint();
      if (verdict === "ok" || verdict === "miss") result.latenciesUs.push(Number(after - before) / 1000);
      else result.errors.set(verdict, (result.errors.get(verdict) ?? 0) + 1);
      const second = Number((after - started) / 1_000_000_000n);
      result.perSecond[second] = (result.perSecond[second] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: spec.clients }, (_, id) => worker(id)));
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return result;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Warm-up, then the measured phase. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.clients, maxFreeSockets: spec.clients });
  try {
    const warmup = spec.warmupRequests ?? Math.max(100, 4 * spec.clients);
    if (warmup > 0) await phase(agent, spec, warmup, 60);
    const ticksBefore = cpuTicks(spec.serverPids);
    const measured = await phase(agent, spec, spec.requestsMax ?? Number.POSITIVE_INFINITY, spec.seconds);
    const serverCpuSeconds = (cpuTicks(spec.serverPids) - ticksBefore) / CLOCK_TICKS_PER_SECOND;
    const sorted = measured.latenciesUs.sort((a, b) => a - b);
    const ops = sorted.length;
    return {
      ops,
      errors: Object.fromEntries(measured.errors),
      seconds: measured.seconds,
      opsPerSecond: ops / measured.seconds,
      latencyMsP50: quantile(sorted, 0.5) / 1000,
      latencyMsP99: quantile(sorted, 0.99) / 1000,
      latencyMsMax: (sorted.at(-1) ?? Number.NaN) / 1000,
      perSecondOps: Array.from({ length: Math.floor(measured.seconds) }, (_, i) => measured.perSecond[i] ?? 0),
      serverCpuUsPerOp: ops > 0 ? (serverCpuSeconds * 1e6) / ops : Number.NaN,
    };
  } finally {
    agent.destroy();
  }
}
