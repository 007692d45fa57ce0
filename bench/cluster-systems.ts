/**
 * The systems the cluster benchmark drives, each started fresh on loopback with fsync on:
 * raftwal (separate `raftwal node` processes, as `raftwal cluster` runs them, with its 4 MiB
 * WAL segments) and etcd (3.4 from Debian: `apt-get install etcd-server etcd-client`),
 * reached through its v3 JSON gateway. Each says how to build the requests of a row, in the
 * shapes of ../shared/bench/kv-bench.mjs: `rest` for raftwal (plain `PUT /kv/{key}` with the
 * value as body, `GET /kv/{key}`), `etcd3` for etcd (`POST /v3/kv/put`, `POST /v3/kv/range`).
 * Keys are `bench/<8 digits of i % KEYS>`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLUSTER_WAL_SEGMENT_BYTES_DEFAULT } from "../src/cli/cluster-command.js";
import { findFreeBasePort, LocalCluster } from "../src/cli/local-cluster.js";
import type { HttpRequest } from "./cluster-load.js";

export const KEYS = 1000;

/** What a row asks: a plain put, a put with session headers (as KvClient sends), a linearizable, lease or stale get. */
export type RequestKind = "put" | "put-session" | "get" | "get-stale";

export interface System {
  name: "raftwal" | "etcd";
  leaderUrl: string;
  /** A member that is not the leader (for stale / serializable reads). */
  followerUrl: string;
  pids(): number[];
  /** The i-th request of a run; keys are `keyOf(i, keys)`. */
  request(kind: RequestKind, i: number, worker: number, value: Buffer, keys?: number): HttpRequest;
  check(kind: RequestKind, status: number, body: Buffer): string;
  stop(): Promise<void>;
}

export function keyOf(i: number, keys = KEYS): string {
  return `bench/${String(i % keys).padStart(8, "0")}`;
}

export interface RaftwalStart {
  nodes: number;
  /** How long a node may take to open its data and serve (default 20 s). */
  apiTimeoutMs?: number;
  /** Extra `raftwal node` flags (e.g. --read-mode lease, --trace-latency). */
  nodeArgs?: string[];
}

/** A raftwal cluster (fresh, or restarted on `dir`'s data with `basePort`); resolves once a leader is known. */
export async function startRaftwal(dir: string, start: RaftwalStart & { basePort?: number }): Promise<System & { basePort: number }> {
  const basePort = start.basePort ?? (await findFreeBasePort(start.nodes));
  const cluster = new LocalCluster({
    nodes: start.nodes,
    dir,
    basePort,
    logs: "file",
    logLevel: "warn",
    nodeArgs: ["--wal-segment-bytes", String(CLUSTER_WAL_SEGMENT_BYTES_DEFAULT), ...(start.nodeArgs ?? [])],
  });
  try {
    await cluster.start({ apiTimeoutMs: start.apiTimeoutMs });
    const leader = await cluster.waitForLeader(20_000);
    const follower = cluster.specs.find((spec) => spec.id !== leader)!;
    // Each run gets its own session ids: a restarted cluster must not see a reused (client, seq).
    const sessionPrefix = `bench-${process.pid}-${Date.now()}`;
    const seqs = new Map<number, number>();
    return {
      name: "raftwal",
      basePort,
      leaderUrl: cluster.spec(leader).apiUrl,
      followerUrl: follower.apiUrl,
      pids: () => cluster.specs.map((spec) => cluster.pid(spec.id)).filter((pid): pid is number => pid !== undefined),
      request(kind, i, worker, value, keys) {
        const path = `/kv/${encodeURIComponent(keyOf(i, keys))}`;
        if (kind === "get") return { method: "GET", path, headers: {} };
        if (kind === "get-stale") return { method: "GET", path: `${path}?stale=true`, headers: {} };
        const headers: Record<string, string> = { "content-type": "application/octet-stream" };
        if (kind === "put-session") {
          const seq = (seqs.get(worker) ?? 0) + 1;
          seqs.set(worker, seq);
          headers["x-raftwal-client-id"] = `${sessionPrefix}-${worker}`;
          headers["x-raftwal-seq"] = String(seq);
        }
        return { method: "PUT", path, body: value, headers };
      },
      check(kind, status, body) {
        if (status >= 200 && status < 300) return "ok";
        if (kind.startsWith("get") && status === 404) return "miss";
        return `HTTP ${status}: ${body.toString().slice(0, 120)}`;
      },
      stop: () => cluster.stop(),
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** etcd's version line, or undefined when it is not installed. */
export function etcdVersion(): string | undefined {
  const run = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return run.status === 0 ? run.stdout.split("\n")[0] : undefined;
}

function spawnEtcd(dir: string, base: number, members: number): ChildProcess[] {
  const specs = Array.from({ length: members }, (_, i) => ({ name: `m${i + 1}`, client: base + 100 + i, peer: base + i }));
  const initialCluster = specs.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  return specs.map((m) => {
    const dataDir = join(dir, m.name);
    mkdirSync(dataDir, { recursive: true });
    // etcd's defaults otherwise: fsync on every commit, 100 ms heartbeats, 1 s election timeout.
    const flags = ["--name", m.name, "--data-dir", dataDir, "--listen-client-urls", `http://127.0.0.1:${m.client}`, "--advertise-client-urls", `http://127.0.0.1:${m.client}`];
    flags.push("--listen-peer-urls", `http://127.0.0.1:${m.peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`);
    flags.push("--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", `bench-${base}`, "--log-level", "error");
    return spawn("etcd", flags, { stdio: "ignore" });
  });
}

async function postJson(url: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(new URL(path, url), { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(1000) });
  return response.json();
}

/** An etcd cluster of `members` members (fresh, or restarted on `dir` with `basePort`; undefined when etcd is not installed); resolves once a leader is known. */
export async function startEtcd(dir: string, members: number, basePort?: number): Promise<(System & { basePort: number }) | undefined> {
  if (!etcdVersion()) return undefined;
  const base = basePort ?? (await findFreeBasePort(members));
  const children = spawnEtcd(dir, base, members);
  const urls = children.map((_, i) => `http://127.0.0.1:${base + 100 + i}`);
  const stop = async () => {
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    }));
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const [i, url] of urls.entries()) {
      const status = (await postJson(url, "/v3/maintenance/status", {}).catch(() => undefined)) as { leader?: string; header?: { member_id?: string } } | undefined;
      if (status?.leader && status.leader === status.header?.member_id) return { ...etcdSystem(url, urls[(i + 1) % urls.length], children, stop), basePort: base };
    }
    await sleep(200);
  }
  await stop();
  throw new Error("etcd did not elect a leader within 30 s");
}

function etcdSystem(leaderUrl: string, followerUrl: string, children: ChildProcess[], stop: () => Promise<void>): System {
  const b64 = (data: string | Buffer) => Buffer.from(data).toString("base64");
  const headers = { "content-type": "application/json" };
  return {
    name: "etcd",
    leaderUrl,
    followerUrl,
    pids: () => children.map((child) => child.pid).filter((pid): pid is number => pid !== undefined),
    request(kind, i, _worker, value, keys) {
      const key = b64(keyOf(i, keys));
      if (kind === "put" || kind === "put-session") return { method: "POST", path: "/v3/kv/put", body: JSON.stringify({ key, value: b64(value) }), headers };
      // Range is linearizable unless serializable (etcd's stale read, served by the member asked).
      return { method: "POST", path: "/v3/kv/range", body: JSON.stringify(kind === "get-stale" ? { key, serializable: true } : { key }), headers };
    },
    check(kind, status, body) {
      if (status !== 200) return `HTTP ${status}: ${body.toString().slice(0, 120)}`;
      if (kind.startsWith("get") && !body.includes('"kvs"')) return "miss";
      return "ok";
    },
    stop,
  };
}
