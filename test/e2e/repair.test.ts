/**
 * End-to-end repair of storage damage from peers (src/raft/REPAIR.md) with real
 * `raftwal node` processes of the KV service on 127.0.0.1 (the compiled CLI in dist/, which
 * `npm test` builds first). Each test writes, stops a follower cleanly, damages its data
 * directory, restarts it (onStorageCorruption "repair" is the default), waits until it logs
 * "storage repaired from peers" and its /status no longer shows `repairing`, then reads
 * every key through that node alone (`?stale=true`: its own state machine). Every process
 * started here is stopped in afterEach; ports are picked free; data lives in a temp dir
 * that is removed.
 */
import { readFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { KvClient } from "../../src/kv/client.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { readHardState } from "../../storage/hard-state.js";
import { listSnapshotFiles } from "../../storage/snapshot-store.js";
import { listSegments, scanWal } from "../../storage/wal/inspect.js";
import { eventually } from "../waiting.js";

const fs = new NodeFileSystem();
const clusters: LocalCluster[] = [];
const clients: KvClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const cluster of clusters.splice(0)) await cluster.stop();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function startCluster(nodeArgs: string[]): Promise<{ cluster: LocalCluster; client: KvClient }> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-e2e-repair-"));
  dirs.push(dir);
  // 50 ms ticks (elections after 0.5 s): quick, yet no spurious election on a busy machine.
  const cluster = new LocalCluster({ nodes: 3, dir, basePort: await findFreeBasePort(3), logs: "file", nodeArgs: ["--tick-ms", "50", ...nodeArgs] });
  clusters.push(cluster);
  await cluster.start();
  const client = new KvClient({ endpoints: cluster.specs.map((spec) => spec.apiUrl), operationTimeoutMs: 20_000 });
  clients.push(client);
  return { cluster, client };
}

const valueOf = (i: number, bytes: number) => `value-${i}-`.padEnd(bytes, "x");

/** Writes `count` keys, 16 at a time; returns the leader and a follower that applied them all. */
async function writeKeys(cluster: LocalCluster, client: KvClient, count: number, valueBytes: number): Promise<{ leader: number; follower: number }> {
  const leader = await cluster.waitForLeader();
  for (let from = 0; from < count; from += 16) {
    await Promise.all(Array.from({ length: Math.min(16, count - from) }, (_, k) => client.put(`key-${from + k}`, valueOf(from + k, valueBytes))));
  }
  const commit = (await cluster.status(leader))!.commitIndex;
  const follower = cluster.specs.map((spec) => spec.id).find((id) => id !== leader)!;
  await eventually(async () => expect((await cluster.status(follower))!.appliedIndex).toBeGreaterThanOrEqual(commit));
  return { leader, follower };
}

/** Stops node `id` cleanly (SIGTERM: it closes its storage) and returns where its log file ends. */
async function stopCleanly(cluster: LocalCluster, id: number): Promise<{ logPath: string; logOffset: number }> {
  await cluster.kill(id, "SIGTERM");
  const logPath = join(cluster.spec(id).dataDir, "..", `node-${id}.log`);
  return { logPath, logOffset: (await stat(logPath)).size };
}

/** The JSON log lines node `id` wrote since `logOffset`. */
async function logLinesSince(at: { logPath: string; logOffset: number }): Promise<Array<Record<string, any>>> {
  const text = (await readFile(at.logPath)).subarray(at.logOffset).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** Restarts node `id` and waits until it logged its repair and /status no longer shows one. */
async function restartAndRepair(cluster: LocalCluster, id: number, at: { logPath: string; logOffset: number }): Promise<Array<Record<string, any>>> {
  await cluster.restart(id);
  const lines = await eventually(async () => {
    const found = await logLinesSince(at);
    expect(found.map((line) => line.msg)).toContain("storage repaired from peers");
    return found;
  });
  await eventually(async () => expect((await cluster.status(id))!.repairing).toBeUndefined());
  return lines;
}

/** Reads every key through node `id` alone, from its own state machine. */
async function expectEveryKey(cluster: LocalCluster, id: number, count: number, valueBytes: number): Promise<void> {
  const leaderCommit = (await cluster.status(await cluster.waitForLeader()))!.commitIndex;
  await eventually(async () => expect((await cluster.status(id))!.appliedIndex).toBeGreaterThanOrEqual(leaderCommit));
  const client = new KvClient({ endpoints: [cluster.spec(id).apiUrl], operationTimeoutMs: 5000 });
  clients.push(client);
  for (let i = 0; i < count; i++) expect((await client.get(`key-${i}`, { stale: true }))?.toString(), `key-${i}`).toBe(valueOf(i, valueBytes));
}

/** Writes keys from `from` on, 16 at a time, until the leader's log starts after `index + 1`; returns how many keys exist then. */
async function writeUntilCompactedPast(cluster: LocalCluster, client: KvClient, from: number, valueBytes: number, index: number): Promise<number> {
  const leader = await cluster.waitForLeader();
  let next = from;
  await eventually(async () => {
    await Promise.all(Array.from({ length: 16 }, (_, k) => client.put(`key-${next + k}`, valueOf(next + k, valueBytes))));
    next += 16;
    expect((await cluster.status(leader))!.firstIndex).toBeGreaterThan(index + 1);
  });
  return next;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] ^= 0x20;
  await writeFile(path, bytes);
}

describe("a follower repairs damaged storage from its peers", () => {
  it("a flipped byte in a sealed WAL segment: it keeps the intact prefix, fetches the rest from the leader and serves every value", async () => {
    // 64 KiB segments (a torture-only flag: the default is 64 MiB) so that 400 writes fill several.
    const { cluster, client } = await startCluster(["--fault-injection", "--fault-wal-segment-bytes", "65536"]);
    const { follower } = await writeKeys(cluster, client, 400, 400);
    const at = await stopCleanly(cluster, follower);
    const walDirectory = join(cluster.spec(follower).dataDir, "wal");
    const sealed = (await listSegments(walDirectory, fs)).filter((segment) => segment.state === "sealed");
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    const middle = sealed[Math.floor(sealed.length / 2)];
    const records = [];
    for await (const record of scanWal(walDirectory, fs)) if (record.segment === middle.name && record.type === "entry") records.push(record);
    const damaged = records[Math.floor(records.length / 2)];
    await flipByte(middle.path, damaged.offset + 40);
    const lines = await restartAndRepair(cluster, follower, at);
    const found = lines.find((line) => line.msg === "storage damage: log entries lost, to be repaired from the leader");
    expect(found).toMatchObject({ segment: middle.name, offset: damaged.offset });
    expect(found!.keptUpTo).toBeLessThan(damaged.index);
    expect(lines.find((line) => line.msg === "storage repaired from peers")).toMatchObject({ hardStateLost: false });
    await expectEveryKey(cluster, follower, 400, 400);
  });

  it("its newest snapshot damaged, with the WAL compacted to it: it restarts at the older one and fetches a snapshot from the leader", async () => {
    // No catch-up tail, so that the WAL is compacted to the newest snapshot (with one, the older snapshot may still be covered).
    const { cluster, client } = await startCluster(["--snapshot-every", "40", "--snapshot-catch-up", "0"]);
    const { follower } = await writeKeys(cluster, client, 200, 64);
    const at = await stopCleanly(cluster, follower);
    const snapshotDirectory = join(cluster.spec(follower).dataDir, "snap");
    const snapshots = await listSnapshotFiles(fs, snapshotDirectory, { verifyPayload: false });
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    const [newest, older] = snapshots;
    await flipByte(join(snapshotDirectory, newest.name), newest.fileBytes! - 8); // in the payload
    // Each node snapshots at its own applied indexes, in the background: the leader's newest
    // may still be below the follower's older one, and then its log holds the entries the
    // follower lost and it sends those instead. Write on until the leader compacted past them.
    const keys = await writeUntilCompactedPast(cluster, client, 200, 64, older.index);
    const lines = await restartAndRepair(cluster, follower, at);
    expect(lines.find((line) => line.msg.startsWith("storage damage: no valid snapshot at"))).toMatchObject({ compactedIndex: newest.index, newestValidIndex: older.index });
    const installed = lines.find((line) => line.msg === "installed a snapshot from the leader");
    expect(installed, "a snapshot fetched from the leader").toBeDefined();
    expect(installed!.index).toBeGreaterThan(older.index);
    await expectEveryKey(cluster, follower, keys, 64);
  });

  it("its only snapshot damaged (the WAL compacted to it), down for seconds: with no configuration naming it left, it restarts without --listen from its MEMBER file, repairs and serves every value", async () => {
    const { cluster, client } = await startCluster(["--snapshot-every", "50", "--snapshot-catch-up", "0"]);
    const { follower } = await writeKeys(cluster, client, 60, 64);
    await eventually(async () => expect((await cluster.status(follower))!.snapshotIndex).toBeGreaterThan(0));
    const at = await stopCleanly(cluster, follower);
    const snapshotDirectory = join(cluster.spec(follower).dataDir, "snap");
    const snapshots = await listSnapshotFiles(fs, snapshotDirectory, { verifyPayload: false });
    expect(snapshots).toHaveLength(1);
    await flipByte(join(snapshotDirectory, snapshots[0].name), snapshots[0].fileBytes! - 8); // in the payload
    // Down long enough for the leader's redial delay to grow past three election timeouts
    // (0.5 s each here) had it kept the transport's 5 s ceiling.
    await sleep(6000);
    // LocalCluster restarts an existing member as `raftwal node --id N --dir D`: no --listen, no --api.
    const lines = await restartAndRepair(cluster, follower, at);
    expect(lines.find((line) => line.msg.startsWith("storage damage: no valid snapshot at"))).toMatchObject({ compactedIndex: snapshots[0].index, newestValidIndex: 0 });
    expect(lines.find((line) => line.msg === "node started")).toMatchObject({ configuration: "voters none (index 0)" });
    expect(lines.find((line) => line.msg === "storage repaired from peers")).toMatchObject({ lostFromIndex: 1 });
    await expectEveryKey(cluster, follower, 60, 64);
  });

  it("its hard state damaged: it rejoins without a second vote in any term it may have voted in", async () => {
    const { cluster, client } = await startCluster([]);
    const { follower } = await writeKeys(cluster, client, 50, 64);
    const termsBefore = await Promise.all(cluster.specs.map(async (spec) => (await cluster.status(spec.id))!.term));
    const at = await stopCleanly(cluster, follower);
    const hardStateDirectory = join(cluster.spec(follower).dataDir, "hardstate");
    const before = (await readHardState(fs, hardStateDirectory)).hardState;
    await flipByte(join(hardStateDirectory, "hardstate"), 14);
    await expect(readHardState(fs, hardStateDirectory)).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
    const lines = await restartAndRepair(cluster, follower, at);
    expect(lines.map((line) => line.msg)).toContain("storage damage: hard state lost (term and vote unknown), to be learned from the voters");
    const repaired = lines.find((line) => line.msg === "storage repaired from peers")!;
    expect(repaired.hardStateLost).toBe(true);
    // The node may have voted in any term up to the highest any node had (its own included).
    const highestTerm = Math.max(before.term, ...termsBefore);
    expect(repaired.term).toBeGreaterThanOrEqual(highestTerm);
    // Durable now: in the term it took, its vote is for itself (REPAIR.md, rule 5), so it
    // could vote for nobody else there; a later term (an election since) it never voted in.
    const after = (await readHardState(fs, hardStateDirectory)).hardState;
    expect(after.term).toBeGreaterThanOrEqual(highestTerm);
    if (after.term === repaired.term) expect(after.vote).toBe(follower);
    await expectEveryKey(cluster, follower, 50, 64);
  });
});
