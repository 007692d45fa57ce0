/**
 * `npm run bench:restart`: what a cluster holding many keys costs (issue 11, "cost as work
 * grows"): each system (3 members, loopback, fsync on) is filled with N distinct keys of
 * 256 B (256 clients, plain puts), then the memory of each member (RSS) and its data
 * directory are read; the cluster is stopped and started again on the same data, timed
 * until a leader is known and a linearizable read is answered (open + replay + election).
 * With `--no-snapshots` raftwal takes no snapshot, so that the restart replays the whole
 * log (`--keys 16384 --value-bytes 65536 --no-snapshots`: a 1 GiB log per node).
 * One run, not rounds: the fill takes minutes. Results: bench/results/restart.json.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { runLoad } from "./cluster-load.js";
import { etcdVersion, keyOf, startEtcd, startRaftwal, type System } from "./cluster-systems.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";

const USAGE = `Usage: npm run bench:restart [-- --keys N] [-- --value-bytes N] [-- --no-snapshots] [-- --no-etcd]
       (node dist/bench/restart.js [flags])

Fills raftwal (3 node processes) and etcd (3 members) with N keys of 256 B, reads each
member's RSS and data size, then restarts the cluster on its data and times it until a
leader answers a linearizable read. Writes bench/results/restart.json.

  --keys N           distinct keys to write (default 1000000)
  --value-bytes N    bytes of each value (default 256)
  --no-snapshots     raftwal takes no snapshot: its restart replays the whole log
                     (--keys 16384 --value-bytes 65536 --no-snapshots: a 1 GiB log)
  --no-etcd          raftwal only (also what happens when etcd is not installed)
  --help             this text
`;
handleUsage(USAGE, ["--keys", "--value-bytes", "--no-snapshots", "--no-etcd"]);

const args = process.argv.slice(2);
const numberFlag = (name: string, fallback: number) => numberOption(USAGE, name, fallback, true);
const KEY_COUNT = numberFlag("--keys", 1_000_000);
const VALUE = randomBytes(numberFlag("--value-bytes", 256));
const NO_SNAPSHOTS = args.includes("--no-snapshots");
/** raftwal node flags that keep every entry in the log (limits far beyond what the fill writes). */
const NO_SNAPSHOT_FLAGS = ["--snapshot-every", String(2 ** 31), "--snapshot-every-bytes", String(2 ** 50)];
/** Fewer clients for large values: 256 x 64 KiB in flight is more than the point of the fill. */
const FILL_CLIENTS = VALUE.length > 4096 ? 16 : 256;

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Math.round(Number(match[1]) / 1024) : Number.NaN;
}

function diskMiB(dir: string): number {
  return Math.round(Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) / 1024);
}

/** Until a linearizable read of a written key is answered 200 on the leader. */
async function firstRead(system: System): Promise<void> {
  const request = system.request("get", 0, 0, VALUE, KEY_COUNT);
  for (let attempt = 0; attempt < 600; attempt++) {
    const response = await fetch(new URL(request.path, system.leaderUrl), { method: request.method, body: request.body, headers: request.headers }).catch(() => undefined);
    if (response?.status === 200) return;
    await sleep(50);
  }
  throw new Error(`${system.name}: no linearizable read answered within 30 s of the restart`);
}

type Start = (basePort?: number) => Promise<(System & { basePort: number }) | undefined>;

/**
 * Starts again on the same ports (the members' addresses are in their logs). Another
 * process may listen on one of them for a moment (findFreeBasePort keeps them out of the
 * ephemeral range, so not an outgoing connection): the start is tried again a few times.
 */
async function restart(start: Start, basePort: number): Promise<System & { basePort: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await start(basePort))!;
    } catch (error) {
      if (attempt >= 5 || !/EADDRINUSE|in use/.test(String(error))) throw error;
      console.log(`restart attempt ${attempt} failed (${(error as Error).message}); trying again in 2 s`);
      await sleep(2000);
    }
  }
}

async function measure(name: string, dir: string, start: Start): Promise<Record<string, unknown> | undefined> {
  const first = await start();
  if (!first) return undefined;
  let fill;
  let rss: number[];
  try {
    console.log(`${name}: writing ${KEY_COUNT.toLocaleString("en-US")} keys with ${FILL_CLIENTS} clients`);
    fill = await runLoad({ url: first.leaderUrl, clients: FILL_CLIENTS, seconds: 3600, warmupRequests: 0, requestsMax: KEY_COUNT, serverPids: first.pids(), request: (i, w) => first.request("put", i, w, VALUE, KEY_COUNT), check: (s, b) => first.check("put", s, b) });
    await sleep(2000);
    rss = first.pids().map(rssMiB);
  } finally {
    await first.stop();
  }
  const started = performance.now();
  const again = await restart(start, first.basePort);
  try {
    await firstRead(again);
    const restartSeconds = (performance.now() - started) / 1000;
    const result = { keys: KEY_COUNT, valueBytes: VALUE.length, fillOpsPerSecond: Math.round(fill.opsPerSecond), fillErrors: fill.errors, rssMiBPerMember: rss, rssMiBAfterRestart: again.pids().map(rssMiB), dataMiB: diskMiB(dir), restartSeconds: Number(restartSeconds.toFixed(2)) };
    console.log(`${name}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await again.stop();
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(os.tmpdir(), "raftwal-bench-restart-"));
  const etcd = args.includes("--no-etcd") ? undefined : etcdVersion();
  console.log(`restart benchmark: ${KEY_COUNT.toLocaleString("en-US")} keys of ${VALUE.length} B${NO_SNAPSHOTS ? ", raftwal without snapshots" : ""}, 3 members, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}${etcd ? `, against ${etcd}` : ", raftwal only (etcd not installed or --no-etcd)"}`);
  try {
    const raftwalDir = join(root, "raftwal");
    const raftwal = await measure("raftwal", raftwalDir, (basePort) => startRaftwal(raftwalDir, { nodes: 3, basePort, apiTimeoutMs: 300_000, nodeArgs: NO_SNAPSHOTS ? NO_SNAPSHOT_FLAGS : [] }));
    const etcdDir = join(root, "etcd");
    const etcdResult = etcd ? await measure("etcd", etcdDir, (basePort) => startEtcd(etcdDir, 3, basePort)) : undefined;
    const path = writeResults("restart", { date: new Date().toISOString(), noSnapshots: NO_SNAPSHOTS, loadAverageAfter: os.loadavg(), key: keyOf(0, KEY_COUNT), raftwal, etcd: etcdResult ?? null });
    console.log(`results written to ${path}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
