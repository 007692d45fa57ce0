/**
 * A steady write load through the repository's own client (KvClient): a fixed number of
 * closed-loop writers, each with its own client session (one write in flight per session),
 * sharing one keep-alive agent; every acknowledged write is counted in the one-second
 * bucket in which it completed. For benchmarks that watch throughput while something else
 * happens (bench/membership.ts).
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { KvClient } from "../src/kv/client.js";
import { median } from "./stats.js";

export interface WriteLoadOptions {
  endpoints: string[];
  /** Writers, each one write in flight. */
  clients: number;
  valueBytes: number;
  /** Keys written round-robin (the state grows by at most keys * valueBytes). */
  keys: number;
}

export class SteadyWriteLoad {
  private readonly agent: http.Agent;
  private readonly clients: KvClient[];
  private startedMs = 0;
  private stopping = false;
  private workers: Array<Promise<void>> = [];
  /** Acknowledged writes per one-second bucket since start (bucket i: [i, i+1) s). */
  readonly writesPerSecond: number[] = [];
  errors = 0;

  constructor(private readonly options: WriteLoadOptions) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.clients, maxFreeSockets: options.clients });
    this.clients = Array.from({ length: options.clients }, () => new KvClient({ endpoints: options.endpoints, agent: this.agent, operationTimeoutMs: 30_000 }));
  }

  start(): void {
    this.startedMs = performance.now();
    const value = Buffer.alloc(this.options.valueBytes, 0x61);
    let next = 0;
    this.workers = this.clients.map(async (client) => {
      while (!this.stopping) {
        try {
          await client.put(`load-${next++ % this.options.keys}`, value);
          const bucket = Math.floor(this.secondsSinceStart());
          while (this.writesPerSecond.length <= bucket) this.writesPerSecond.push(0);
          this.writesPerSecond[bucket] += 1;
        } catch {
          this.errors += 1;
        }
      }
    });
  }

  /** Seconds since start(). */
  secondsSinceStart(): number {
    return (performance.now() - this.startedMs) / 1000;
  }

  /** Lets every writer finish its write in flight, then closes the clients. Returns the seconds the load ran. */
  async stop(): Promise<number> {
    this.stopping = true;
    await Promise.all(this.workers);
    const seconds = this.secondsSinceStart();
    for (const client of this.clients) client.close();
    this.agent.destroy();
    return seconds;
  }
}

export interface ThroughputDip {
  /** Median writes/s over the whole seconds after the warm-up and before the change. */
  beforeMedian: number;
  /** Lowest and mean writes/s over the seconds that overlap the change. */
  duringMin: number;
  duringMean: number;
  /** Median writes/s over the whole seconds after the change (the last, partial one left out). */
  afterMedian: number;
  /** duringMin / beforeMedian: 1 means no dip, 0 means writes stopped for a whole second. */
  dipRatio: number;
  /** duringMean / beforeMedian. */
  duringMeanRatio: number;
}

/** When things happened, in seconds since the load started. */
export interface LoadTimeline {
  /** Seconds left out at the start (connections opening, the JIT warming up). */
  warmupSeconds: number;
  changeStartSecond: number;
  changeEndSecond: number;
  /** How long the load ran: the last second, partial, is left out. */
  loadSeconds: number;
}

/** Splits a per-second series (bucket i: second [i, i+1)) into before, during and after a change. */
export function throughputDip(writesPerSecond: number[], timeline: LoadTimeline): ThroughputDip {
  const { warmupSeconds, changeStartSecond, changeEndSecond, loadSeconds } = timeline;
  const whole = Array.from({ length: Math.floor(loadSeconds) }, (_, i) => writesPerSecond[i] ?? 0);
  const before = whole.filter((_, i) => i >= warmupSeconds && i + 1 <= changeStartSecond);
  const during = whole.filter((_, i) => i + 1 > changeStartSecond && i < changeEndSecond);
  const after = whole.filter((_, i) => i >= changeEndSecond);
  const beforeMedian = median(before);
  const duringMean = during.reduce((sum, n) => sum + n, 0) / Math.max(1, during.length);
  const duringMin = during.length > 0 ? Math.min(...during) : NaN;
  return { beforeMedian, duringMin, duringMean, afterMedian: median(after), dipRatio: duringMin / beforeMedian, duringMeanRatio: duringMean / beforeMedian };
}
