/**
 * Steps the benchmarks on a LocalCluster of node processes share: waiting for a condition,
 * loading KV state, reading a node's log lines, waiting for a follower to catch up, a fresh
 * loaded 3-node cluster per round.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { findFreeBasePort, LocalCluster } from "../src/cli/local-cluster.js";
import { KvClient } from "../src/kv/client.js";

/** Node's promise timer, under the name the benchmarks use. */
export { sleep };

/** Polls `probe` every 25 ms until it returns a value, or fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface StateLoad {
  /** Keys `state-0` .. `state-<keys-1>`, each written once. */
  keys: number;
  valueBytes: number;
  writers: number;
}

/** Writes every key of `load` once through `writers` KvClients; returns the seconds it took. */
export async function loadState(endpoints: string[], load: StateLoad): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: load.writers }, async () => {
      const client = new KvClient({ endpoints, operationTimeoutMs: 60_000 });
      try {
        for (let key = next++; key < load.keys; key = next++) await client.put(`state-${key}`, Buffer.alloc(load.valueBytes, key % 251));
      } finally {
        client.close();
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** The JSON log lines of node `id` (its `node-<id>.log`, `logs: "file"`) whose message includes `text`. */
export async function logLines(cluster: LocalCluster, id: number, text: string): Promise<Array<{ time: number } & Record<string, unknown>>> {
  const log = await readFile(join(cluster.spec(id).dataDir, "..", `node-${id}.log`), "utf8");
  return log
    .split("\n")
    .filter((line) => line.includes(text))
    .map((line) => JSON.parse(line) as { time: number } & Record<string, unknown>);
}

/** Caught up: applied within this many entries of the leader's commit index (a few writes in flight). */
export const CAUGHT_UP_ENTRIES = 500;

/** Polls every 250 ms until `follower` is within CAUGHT_UP_ENTRIES of the leader's commit, for at most `seconds`; the seconds it took. */
export async function secondsToCatchUp(cluster: LocalCluster, leader: number, follower: number, seconds: number): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const [lead, behind] = await Promise.all([cluster.status(leader), cluster.status(follower)]);
    if (lead && behind && lead.commitIndex - behind.appliedIndex < CAUGHT_UP_ENTRIES) return (performance.now() - started) / 1000;
    await sleep(250);
  }
  return undefined;
}

/** A fresh 3-node cluster with KV state loaded through its leader (withLoadedCluster). */
export interface LoadedCluster {
  cluster: LocalCluster;
  leader: number;
  /** A follower (the one the catch-up benchmarks kill and restart). */
  follower: number;
  /** The leader's API, where every load goes. */
  endpoints: string[];
  /** Seconds the state took to load. */
  loadSeconds: number;
}

/**
 * Starts 3 `raftwal node` processes with `nodeArgs` in a temporary directory (logs to files),
 * loads `state` through the leader, runs `body`, then stops the cluster and removes its
 * directory, whatever `body` did.
 */
export async function withLoadedCluster<T>(nodeArgs: string[], state: StateLoad, body: (loaded: LoadedCluster) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "raftwal-bench-"));
  const cluster = new LocalCluster({ nodes: 3, dir, basePort: await findFreeBasePort(3), logs: "file", nodeArgs });
  try {
    await cluster.start();
    const leader = await cluster.waitForLeader(30_000);
    const follower = cluster.specs.find((spec) => spec.id !== leader)!.id;
    const endpoints = [cluster.spec(leader).apiUrl];
    const loadSeconds = await loadState(endpoints, state);
    return await body({ cluster, leader, follower, endpoints, loadSeconds });
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
