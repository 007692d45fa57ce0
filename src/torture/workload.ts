/**
 * The torture run's clients: `clients` workers, each with its own KvClient (its own
 * session, so retried writes take effect once), issuing reads, puts, CAS and deletes on a
 * small set of keys, one operation at a time, until told to stop. Every write carries a
 * value no other operation writes (`<worker>.<n>`), so each read names the write it saw.
 *
 * The workload only records (history.ts); it judges nothing (checks.ts does).
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { KvClient, KvError } from "../kv/client.js";
import { seededRandom } from "../rng.js";
import type { History, Invocation } from "./history.js";

export interface WorkloadOptions {
  endpoints: string[];
  clients: number;
  keys: string[];
  history: History;
  /** Seeds each worker's choice of operations (timings still vary from run to run). */
  seed: number;
  /** Prefix of the session ids (unique per run). */
  runId: string;
  /** Total time one operation may take, retries included. */
  operationTimeoutMs: number;
  /** Pause between a worker's operations (keeps the 2-core test machines breathing). */
  thinkTimeMs: number;
}

/** Share of each operation kind, in percent: reads, puts, CAS, deletes. */
const MIX_PERCENT = { read: 40, write: 35, cas: 20, delete: 5 } as const;

export class Workload {
  private stopping = false;
  private workers: Promise<void>[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** Each worker's client, by worker number. */
  private readonly clients: KvClient[] = [];

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    for (let worker = 0; worker < this.options.clients; worker++) this.workers.push(this.runWorker(worker));
  }

  /** Asks every worker to stop after its current operation and waits for them (bounded by the operation timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  /** The cluster's members changed: every worker's client (and readOnce) uses these endpoints from its next request on. */
  setEndpoints(endpoints: string[]): void {
    if (endpoints.length === 0) return;
    this.options.endpoints = [...endpoints];
    this.clients.forEach((client, worker) => client.setEndpoints(rotate(endpoints, worker)));
  }

  /** Closes the connections (after stop; readOnce no longer works). */
  close(): void {
    for (const client of this.clients.splice(0)) client?.close();
    this.agent.destroy();
  }

  /** One operation through a fresh client of its own, recorded (used for the final reads). */
  async readOnce(clientId: string, key: string): Promise<string | null | undefined> {
    const client = new KvClient({ endpoints: this.options.endpoints, clientId, operationTimeoutMs: this.options.operationTimeoutMs, requestTimeoutMs: 2000, agent: this.agent });
    return (await this.perform(client, clientId, { op: "read", key })) as string | null | undefined;
  }

  private async runWorker(worker: number): Promise<void> {
    const random = seededRandom((this.options.seed + worker * 0x9e3779b9) >>> 0);
    const clientId = `${this.options.runId}-w${worker}`;
    const client = new KvClient({
      endpoints: rotate(this.options.endpoints, worker),
      clientId,
      operationTimeoutMs: this.options.operationTimeoutMs,
      requestTimeoutMs: Math.min(2000, this.options.operationTimeoutMs),
      agent: this.agent,
    });
    this.clients[worker] = client;
    /** The last value this worker saw per key: what its CAS expects. */
    const seen = new Map<string, string | null>();
    let written = 0;
    while (!this.stopping && !this.options.history.full()) {
      const key = this.options.keys[Math.floor(random() * this.options.keys.length)];
      const dice = random() * 100;
      let invocation: Invocation;
      if (dice < MIX_PERCENT.read) invocation = { op: "read", key };
      else if (dice < MIX_PERCENT.read + MIX_PERCENT.write) invocation = { op: "write", key, value: `${worker}.${++written}` };
      else if (dice < MIX_PERCENT.read + MIX_PERCENT.write + MIX_PERCENT.cas) invocation = { op: "cas", key, expect: seen.get(key) ?? null, value: `${worker}.${++written}` };
      else invocation = { op: "delete", key };
      const observed = await this.perform(client, clientId, invocation);
      if (observed !== undefined) seen.set(key, observed);
      if (this.options.thinkTimeMs > 0) await sleep(this.options.thinkTimeMs * (0.5 + random()));
    }
  }

  /** Runs one operation and records it; returns the value now known for the key (undefined: unknown). */
  private async perform(client: KvClient, clientId: string, invocation: Invocation): Promise<string | null | undefined> {
    const history = this.options.history;
    const id = history.invoke(clientId, invocation);
    try {
      switch (invocation.op) {
        case "read": {
          const value = await client.get(invocation.key);
          const result = value === undefined ? null : value.toString();
          history.ok(id, { op: "read", result });
          return result;
        }
        case "write":
          await client.put(invocation.key, invocation.value);
          history.ok(id, { op: "write" });
          return invocation.value;
        case "delete": {
          const existed = await client.delete(invocation.key);
          history.ok(id, { op: "delete", existed });
          return null;
        }
        case "cas": {
          const answer = await client.cas(invocation.key, invocation.expect, invocation.value);
          if (answer.ok) {
            history.ok(id, { op: "cas", result: "ok" });
            return invocation.value;
          }
          const current = answer.current ?? null;
          history.ok(id, { op: "cas", result: "mismatch", current });
          return current;
        }
      }
    } catch (error) {
      // A 4xx other than the operation's own "no" (404/409 handled above) was refused before
      // it could take effect; anything else (timeout, 503 until the deadline, connection
      // lost, 500) may or may not have.
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof KvError && error.status >= 400 && error.status < 500) history.fail(id, `${error.status} ${error.code}: ${message}`);
      else history.unknown(id, message);
      return undefined;
    }
  }
}

/** Each worker starts at a different node, so requests do not all begin at node 1. */
function rotate<T>(items: T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
