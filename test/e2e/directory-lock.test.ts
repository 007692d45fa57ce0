/**
 * The data directory lock with real processes (the compiled CLI in dist/, which `npm test`
 * builds first): a live `raftwal node` holds its directory; a second node and `raftwal wal
 * repair` on it exit non-zero with one clear line before touching anything; after `kill -9`
 * of the holder a restart takes the lock at once. Every process started here is stopped in
 * afterEach; ports are picked free; data lives in a temp dir that is removed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { CLI_ENTRY, findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";

/** A process that should exit at once is killed (and the test fails) after this long. */
const SECOND_PROCESS_TIMEOUT_MS = 20_000;

const clusters: LocalCluster[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Every file under `dir` with its bytes, to show that nothing changed. */
function snapshotOfFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files[join(entry.parentPath, entry.name)] = readFileSync(join(entry.parentPath, entry.name)).toString("base64");
  }
  return files;
}

/** Waits (bounded) until the leader applied everything it has: an idle node writes nothing more. */
async function settled(cluster: LocalCluster, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await cluster.status(1);
    if (status && status.appliedIndex === status.lastIndex && status.commitIndex === status.lastIndex) return;
    if (Date.now() > deadline) throw new Error(`node 1 did not settle: ${JSON.stringify(status)}`);
    await sleep(50);
  }
}

/** Runs the CLI to completion (killed after SECOND_PROCESS_TIMEOUT_MS). */
function runCliProcess(args: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI_ENTRY, ...args], { encoding: "utf8", timeout: SECOND_PROCESS_TIMEOUT_MS, killSignal: "SIGKILL" });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

describe("the data directory lock across processes", () => {
  it("a second node and wal repair on a live node's directory exit 1 with one line and change nothing; after kill -9 a restart takes the lock at once", async () => {
    const root = await mkdtemp(join(tmpdir(), "raftwal-lock-e2e-"));
    dirs.push(root);
    const cluster = new LocalCluster({ nodes: 1, dir: root, basePort: await findFreeBasePort(1), logs: "file", nodeArgs: ["--tick-ms", "20"] });
    clusters.push(cluster);
    await cluster.start();
    await cluster.waitForLeader();
    await settled(cluster);
    const { dataDir } = cluster.spec(1);
    const holder = cluster.pid(1)!;
    expect(await new NodeFileSystem().directoryLockHolder(dataDir)).toEqual({ pid: holder });
    const before = snapshotOfFiles(dataDir);

    // Another node on the same directory, on ports of its own: without the lock it would
    // start, elect itself and write its term and vote into the live node's hard state.
    const otherPort = await findFreeBasePort(1);
    const peers = `1=127.0.0.1:${otherPort}/127.0.0.1:${otherPort + 100}`;
    const second = runCliProcess(["node", "--id", "1", "--dir", dataDir, "--peers", peers, "--cluster-id", "local", "--log-level", "silent"]);
    const expected = `raftwal: data directory ${dataDir} is in use by process ${holder} (a running node, or \`raftwal wal repair\`): one process at a time may open it; stop that process first [WAL_ERR_LOCKED]\n`;
    expect(second).toMatchObject({ status: 1, signal: null, stderr: expected });
    const repair = runCliProcess(["wal", "repair", dataDir]);
    expect(repair).toMatchObject({ status: 1, signal: null, stderr: expected, stdout: "" });
    const verify = runCliProcess(["wal", "verify", dataDir]);
    expect(verify.status).toBe(0);
    expect(verify.stderr).toBe(`raftwal: warning: ${dataDir} is in use by process ${holder} (a running node?); reading it anyway, and what it writes meanwhile may read as a torn tail\n`);
    expect(snapshotOfFiles(dataDir)).toEqual(before); // the hard state and every other file byte for byte
    expect(await new NodeFileSystem().directoryLockHolder(dataDir)).toEqual({ pid: holder });

    // kill -9: no cleanup runs, yet the kernel drops the lock with the process.
    await cluster.kill(1, "SIGKILL");
    expect(await new NodeFileSystem().directoryLockHolder(dataDir)).toBeUndefined();
    cluster.startNode(1);
    await cluster.waitForLeader(); // a node that could not start would never answer: this would time out
    const restarted = cluster.pid(1)!;
    expect(restarted).not.toBe(holder);
    expect(await new NodeFileSystem().directoryLockHolder(dataDir)).toEqual({ pid: restarted });
  });
});
