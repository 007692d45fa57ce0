/**
 * `npm run bench:cluster`: a 3-node raftwal cluster of separate processes on loopback
 * (fsync on), driven over HTTP/JSON: puts of 256-byte values with 1, 16, 64 and 256
 * concurrent clients, and linearizable gets with 16 clients; throughput and latency
 * p50/p99. When `etcd` is installed (Debian: etcd-server, etcd-client), the same load runs
 * against a 3-member etcd cluster on the same machine in the same run, through its v3
 * JSON gateway, with the same client code and keep-alive settings; the table shows
 * raftwal / etcd. Results go to bench/results/cluster.json.
 *
 * Both systems are sent requests at their leader (etcd would forward from a follower,
 * raftwal would redirect): the comparison is of the replication path, not of routing.
 *
 * Flags: --seconds N (per measurement, default 5), --quick (2 s, fewer levels), --no-etcd.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { findFreeBasePort, LocalCluster } from "../src/cli/local-cluster.js";
import { send } from "../src/kv/client.js";
import { writeResults } from "./results.js";
import { handleUsage } from "./usage.js";

handleUsage(
  `Usage: npm run bench:cluster [-- --seconds N] [-- --quick] [-- --no-etcd]
       (node dist/bench/cluster.js [--seconds N] [--quick] [--no-etcd])

3 raftwal node processes on loopback, fsync on: puts (256 B) with 1, 16, 64, 256 clients
and linearizable gets with 16 clients; the same against etcd in the same run when it is
installed. Prints a table; writes bench/results/cluster.json.

  --seconds N   length of each measurement (default 5)
  --quick       2 s per measurement, fewer levels
  --no-etcd     raftwal only
  --help        this text
`,
  ["--seconds", "--quick", "--no-etcd"],
);

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const secondsFlag = args.indexOf("--seconds");
const SECONDS = secondsFlag >= 0 ? Number(args[secondsFlag + 1]) : quick ? 2 : 5;
const PUT_CONCURRENCY = quick ? [1, 64] : [1, 16, 64, 256];
const GET_CONCURRENCY = 16;
const VALUE_BYTES = 256;
const KEYS = 1000;

interface Target {
  name: string;
  /** Base URL of the leader's HTTP API. */
  leaderUrl: string;
  put(agent: http.Agent, url: string, key: string, value: Buffer): Promise<number>;
  get(agent: http.Agent, url: string, key: string): Promise<number>;
  stop(): Promise<void>;
}

interface Measurement {
  system: string;
  op: "put" | "get";
  clients: number;
  ops: number;
  errors: number;
  opsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `clients` closed-loop workers for SECONDS; each issues one request at a time. */
async function measure(target: Target, op: "put" | "get", clients: number): Promise<Measurement> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + SECONDS * 1000;
  let counter = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const key = `key-${counter++ % KEYS}`;
      const started = performance.now();
      try {
        const status = op === "put" ? await target.put(agent, target.leaderUrl, key, value) : await target.get(agent, target.leaderUrl, key);
        if (status === 200) latencies.push(performance.now() - started);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsedSeconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    system: target.name,
    op,
    clients,
    ops: latencies.length,
    errors,
    opsPerSecond: latencies.length / elapsedSeconds,
    latencyMsP50: percentile(latencies, 50),
    latencyMsP99: percentile(latencies, 99),
  };
}

async function startRaftwal(dir: string): Promise<Target> {
  const cluster = new LocalCluster({ nodes: 3, dir: join(dir, "raftwal"), basePort: await findFreeBasePort(3), logs: "file", logLevel: "warn" });
  await cluster.start();
  const leader = await cluster.waitForLeader(20_000);
  return {
    name: "raftwal",
    leaderUrl: cluster.spec(leader).apiUrl,
    async put(agent, url, key, value) {
      return (await send(agent, "PUT", new URL(`/kv/${key}`, url), value, {}, 10_000)).status;
    },
    async get(agent, url, key) {
      const status = (await send(agent, "GET", new URL(`/kv/${key}`, url), undefined, {}, 10_000)).status;
      return status === 404 ? 200 : status;
    },
    stop: () => cluster.stop(),
  };
}

async function startEtcd(dir: string): Promise<Target | undefined> {
  if (spawnSync("etcd", ["--version"]).status !== 0) return undefined;
  const base = await findFreeBasePort(3);
  const members = [1, 2, 3].map((i) => ({ name: `m${i}`, client: base + 100 + i - 1, peer: base + i - 1 }));
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  const children: ChildProcess[] = members.map((m) => {
    const dataDir = join(dir, "etcd", m.name);
    mkdirSync(dataDir, { recursive: true });
    return spawn(
      "etcd",
      [
        "--name", m.name,
        "--data-dir", dataDir,
        "--listen-client-urls", `http://127.0.0.1:${m.client}`,
        "--advertise-client-urls", `http://127.0.0.1:${m.client}`,
        "--listen-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-cluster", initialCluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", `bench-${base}`,
        "--log-level", "error",
      ],
      { stdio: "ignore" },
    );
  });
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        await exited;
      }),
    );
  };
  // Find the leader through the gateway's maintenance status.
  const agent = new http.Agent({ keepAlive: false });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const m of members) {
      try {
        const response = await send(agent, "POST", new URL("/v3/maintenance/status", `http://127.0.0.1:${m.client}`), Buffer.from("{}"), {}, 1000);
        const status = JSON.parse(response.body.toString()) as { leader?: string; header?: { member_id?: string } };
        if (status.leader && status.leader === status.header?.member_id) {
          const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
          return {
            name: "etcd",
            leaderUrl: `http://127.0.0.1:${m.client}`,
            async put(a, url, key, value) {
              const body = Buffer.from(JSON.stringify({ key: b64(key), value: b64(value) }));
              return (await send(a, "POST", new URL("/v3/kv/put", url), body, { "content-type": "application/json" }, 10_000)).status;
            },
            async get(a, url, key) {
              // Range requests are linearizable by default in etcd v3 (serializable: false).
              const body = Buffer.from(JSON.stringify({ key: b64(key) }));
              return (await send(a, "POST", new URL("/v3/kv/range", url), body, { "content-type": "application/json" }, 10_000)).status;
            },
            stop,
          };
        }
      } catch {
        // not up yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  throw new Error("etcd did not elect a leader within 30 s");
}

async function runAll(target: Target): Promise<Measurement[]> {
  const results: Measurement[] = [];
  // Warm-up: fill the key space so gets find values and JITs are warm.
  await measure(target, "put", 16).catch(() => undefined);
  for (const clients of PUT_CONCURRENCY) results.push(await measure(target, "put", clients));
  results.push(await measure(target, "get", GET_CONCURRENCY));
  return results;
}

function format(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "raftwal-bench-cluster-"));
  const results: Measurement[] = [];
  try {
    console.log(`raftwal cluster benchmark: 3 nodes on loopback, ${VALUE_BYTES} B values, ${SECONDS} s per row`);
    const raftwal = await startRaftwal(dir);
    try {
      results.push(...(await runAll(raftwal)));
    } finally {
      await raftwal.stop();
    }
    const etcd = args.includes("--no-etcd") ? undefined : await startEtcd(dir);
    if (etcd) {
      try {
        results.push(...(await runAll(etcd)));
      } finally {
        await etcd.stop();
      }
    } else {
      console.log("etcd not installed (apt-get install etcd-server etcd-client): raftwal only");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = results.filter((r) => r.system === "raftwal").map((r) => {
    const e = results.find((x) => x.system === "etcd" && x.op === r.op && x.clients === r.clients);
    return {
      op: r.op,
      clients: r.clients,
      "raftwal ops/s": format(r.opsPerSecond),
      "p50 ms": format(r.latencyMsP50, 2),
      "p99 ms": format(r.latencyMsP99, 2),
      errors: r.errors,
      "etcd ops/s": e ? format(e.opsPerSecond) : "-",
      "etcd p50 ms": e ? format(e.latencyMsP50, 2) : "-",
      "etcd p99 ms": e ? format(e.latencyMsP99, 2) : "-",
      "ratio ops/s": e ? format(r.opsPerSecond / e.opsPerSecond, 2) : "-",
      "ratio p99": e ? format(r.latencyMsP99 / e.latencyMsP99, 2) : "-",
    };
  });
  console.table(rows);
  const path = writeResults("cluster", { date: new Date().toISOString(), secondsPerRow: SECONDS, valueBytes: VALUE_BYTES, results });
  console.log(`results written to ${path}`);
}

await main();
