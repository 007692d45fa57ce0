/**
 * RaftNode in-process: three nodes in this process on 127.0.0.1 (free ports), the KV
 * state machine, real TCP. Storage is the in-memory file system where a test needs to
 * fail an fsync, the real disk elsewhere.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/kv/command.js";
import { startKvNode, type KvNode, type KvPeerConfig } from "../../src/kv/kv-node.js";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { silentLogger } from "../../src/node/logger.js";
import { NotLeaderError } from "../../src/node/errors.js";
import { eventually } from "../waiting.js";
import { closeAfterTest, closeKvNodes, startThree, tempDirAfterTest } from "./kv-nodes.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import type { FileSystem, StorageFile } from "../../storage/fs/file-system.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/transport.js";
import type { Message } from "../../src/proto/schema.js";

/** Wraps a file system so that every fsync waits while `hold` is set: a disk that stalls. */
class StallingFileSystem extends MemoryFileSystem {
  hold: Promise<void> | undefined;

  override async open(path: string, options?: Parameters<FileSystem["open"]>[1]): Promise<StorageFile> {
    const file = await super.open(path, options);
    const sync = file.sync.bind(file);
    file.sync = async () => {
      while (this.hold) await this.hold;
      return sync();
    };
    return file;
  }
}

afterEach(closeKvNodes);

/** A TcpTransport that counts the messages the node hands it. */
class CountingTransport extends TcpTransport {
  sent = 0;

  override send(messages: readonly Message[]): void {
    this.sent += messages.length;
    super.send(messages);
  }
}

async function leaderOf(nodes: KvNode[], timeoutMs = 10_000): Promise<KvNode> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leaders = nodes.filter((n) => n.node.status().role === "leader");
    if (leaders.length === 1) return leaders[0];
    await sleep(10);
  }
  throw new Error("no leader");
}

const put = (key: string, value: string, seq: number, clientId = "c1") =>
  encodeCommand({ op: "put", clientId, seq, key, value: new TextEncoder().encode(value) });

describe("RaftNode", () => {
  it("resolves a proposal with the state machine's result once it is applied, on every node", async () => {
    const nodes = await startThree({ snapshotEveryEntries: 25 });
    const leader = await leaderOf(nodes);
    for (let seq = 1; seq <= 60; seq++) expect(await leader.node.propose(put(`k${seq}`, `v${seq}`, seq))).toEqual({ status: "ok" });
    // A retried (client, seq) is not applied again: the remembered result comes back.
    expect(await leader.node.propose(put("k60", "changed", 60))).toEqual({ status: "ok" });
    expect(new TextDecoder().decode(leader.kv.get("k60"))).toBe("v60");
    expect(await leader.node.propose(put("k1", "changed", 1))).toEqual({ status: "stale", lastSeq: 60 });
    const applied = leader.node.status().appliedIndex;
    const deadline = Date.now() + 10_000;
    while (nodes.some((n) => n.node.status().appliedIndex < applied) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const hashes = new Set(nodes.map((n) => n.kv.hash()));
    expect(hashes.size).toBe(1);
    // The snapshot policy (every 25 entries) ran and compacted the log.
    expect(leader.node.status().snapshotIndex).toBeGreaterThanOrEqual(25);
  });

  it("talks to its peers through the transport the host builds from the node's options", async () => {
    const built = new Map<number, { options: TcpTransportOptions; transport: CountingTransport }>();
    const nodes = await startThree({
      snapshotEveryEntries: 25,
      seed: 6,
      transport: (options) => {
        const transport = new CountingTransport(options);
        built.set(options.nodeId, { options, transport });
        return transport;
      },
    });
    const leader = await leaderOf(nodes);
    await leader.node.propose(put("t", "1", 1));
    expect([...built.keys()].sort()).toEqual([1, 2, 3]);
    for (const node of nodes) {
      const { options, transport } = built.get(node.node.status().id)!;
      expect(options.clusterId).toBe("test");
      expect(options.listen.port).toBe(node.node.address().port);
      // Every other member of the configuration (this node is not its own peer).
      expect([...options.peers.keys()].sort()).toEqual([1, 2, 3].filter((id) => id !== node.node.status().id));
      expect(transport.sent).toBeGreaterThan(0);
    }
  });

  it("rejects a proposal on a follower with NotLeaderError naming the leader and its address", async () => {
    const nodes = await startThree({ snapshotEveryEntries: 25, seed: 2 });
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader)!;
    // The follower learns the leader from its first append or heartbeat.
    while (follower.node.status().leader === 0) await new Promise((r) => setTimeout(r, 10));
    const error = await follower.node.propose(put("x", "y", 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leaderId).toBe(leader.node.status().id);
    expect((error as NotLeaderError).leaderAddress?.port).toBeGreaterThan(0);
  });

  it("a proposal or read made before any leader is known waits for the election instead of failing", async () => {
    const nodes = await startThree({ snapshotEveryEntries: 25, seed: 7, fs: () => new MemoryFileSystem() });
    expect(nodes.every((n) => n.node.status().leader === 0)).toBe(true);
    // Right after the start: no node knows a leader yet.
    const outcomes = await Promise.all(nodes.map((n, k) => n.node.propose(put(`early${k}`, "v", 1)).then((result) => result, (error: unknown) => error)));
    const leader = await leaderOf(nodes);
    const leaderIndex = nodes.indexOf(leader);
    expect(outcomes[leaderIndex]).toEqual({ status: "ok" });
    for (const [k, outcome] of outcomes.entries()) {
      if (k === leaderIndex) continue;
      // A follower answers once it knows the leader: NotLeaderError naming it, never "leader: unknown".
      expect(outcome).toBeInstanceOf(NotLeaderError);
      expect((outcome as NotLeaderError).leaderId).toBe(leader.node.status().id);
    }
    await expect(nodes[(leaderIndex + 1) % 3].node.read()).resolves.toBeUndefined();
    expect(await nodes[0].node.waitForLeader()).toBe(leader.node.status().id);
  });

  it("waitForLeader and a proposal give up with NotLeaderError (leader unknown) when no leader can be elected", async () => {
    const base = await findFreeBasePort(3);
    const peers: KvPeerConfig[] = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, api: { host: "127.0.0.1", port: base + 99 + id } }));
    // Only node 1 of three runs: it can never win an election.
    const lonely = await startKvNode({ id: 1, clusterId: "test", initialClusterState: "new", peers, dataDir: "/data/node-1", storage: { fs: new MemoryFileSystem() }, tickMs: 10, proposalTimeoutMs: 300, logger: silentLogger });
    closeAfterTest(lonely);
    const waited = await lonely.node.waitForLeader({ timeoutMs: 200 }).catch((error: unknown) => error);
    expect(waited).toBeInstanceOf(NotLeaderError);
    expect((waited as NotLeaderError).leaderId).toBe(0);
    expect((waited as Error).message).toMatch(/no leader known within 200 ms/);
    const proposed = await lonely.node.propose(put("k", "v", 1)).catch((error: unknown) => error);
    expect(proposed).toBeInstanceOf(NotLeaderError);
    expect((proposed as Error).message).toMatch(/proposal \(no leader known within 300 ms\)/);
  });

  it("close() lets the proposals in flight commit, refuses new ones, then saves the commit index", async () => {
    const disks = new Map<number, MemoryFileSystem>();
    const nodes = await startThree({ snapshotEveryEntries: 25, seed: 8, fs: (id) => disks.set(id, new MemoryFileSystem()).get(id)! });
    const leader = await leaderOf(nodes);
    await leader.node.propose(put("warm", "up", 1));
    const inFlight = Array.from({ length: 20 }, (_, k) => leader.node.propose(put(`f${k}`, "v", k + 2)));
    const closed = leader.node.close();
    const late = await leader.node.propose(put("late", "v", 99)).catch((error: unknown) => error);
    expect(late).toMatchObject({ code: "NODE_ERR_CLOSED" });
    await closed;
    // Every proposal made before close() committed and was applied: none was cut off.
    expect(await Promise.all(inFlight)).toEqual(Array.from({ length: 20 }, () => ({ status: "ok" })));
    const applied = leader.node.status().appliedIndex;
    const { openRaftStorage } = await import("../../storage/raft-storage.js");
    const id = leader.node.status().id;
    const reopened = await openRaftStorage(`/data/node-${id}`, { fs: disks.get(id)! });
    try {
      expect(reopened.hardState().commit).toBeGreaterThanOrEqual(applied);
      expect(applied).toBeGreaterThanOrEqual(22);
    } finally {
      await reopened.close();
    }
  });

  it("serves linearizable reads on the leader and on a follower through ReadIndex", async () => {
    const nodes = await startThree({ snapshotEveryEntries: 25, seed: 3 });
    const leader = await leaderOf(nodes);
    await leader.node.propose(put("r", "1", 1));
    const follower = nodes.find((n) => n !== leader)!;
    while (follower.node.status().leader === 0) await new Promise((r) => setTimeout(r, 10));
    await follower.node.read();
    // After the read completes, the follower has applied the write acknowledged before it.
    expect(new TextDecoder().decode(follower.kv.get("r"))).toBe("1");
    await leader.node.read();
  });

  it("stops loudly when an fsync fails, rejecting pending work, and never retries it", async () => {
    const filesystems = new Map<number, MemoryFileSystem>();
    const nodes = await startThree({ snapshotEveryEntries: 25, fs: (id) => filesystems.set(id, new MemoryFileSystem()).get(id)!, seed: 4 });
    const leader = await leaderOf(nodes);
    const id = leader.node.status().id;
    await leader.node.propose(put("before", "1", 1));
    const fatal = new Promise<Error>((resolve) => leader.node.onFatal(resolve));
    filesystems.get(id)!.failNextSync();
    const outcome = await leader.node.propose(put("during", "2", 2)).catch((e: unknown) => e as Error);
    expect(outcome).toBeInstanceOf(Error);
    const error = await fatal;
    expect(error.message).toMatch(/fsync|EIO/i);
    expect(leader.node.failure()).toBe(error);
    await expect(leader.node.propose(put("after", "3", 3))).rejects.toMatchObject({ code: "NODE_ERR_CLOSED" });
    // The other two elect a new leader and keep serving.
    const survivors = nodes.filter((n) => n !== leader);
    const next = await leaderOf(survivors);
    expect(await next.node.propose(put("later", "4", 1, "c2"))).toEqual({ status: "ok" });
  });

  it("keeps heartbeating while its disk stalls: a slow fsync on the leader causes no election", async () => {
    const filesystems = new Map<number, StallingFileSystem>();
    const nodes = await startThree({ snapshotEveryEntries: 25, fs: (id) => filesystems.set(id, new StallingFileSystem()).get(id)!, seed: 5 });
    const leader = await leaderOf(nodes);
    const { id, term } = leader.node.status();
    await leader.node.propose(put("a", "1", 1));
    let release!: () => void;
    filesystems.get(id)!.hold = new Promise<void>((resolve) => (release = resolve));
    const stalled = leader.node.propose(put("b", "2", 2));
    // 100 ticks of 10 ms: five times the longest election timeout (10-20 ticks).
    await sleep(1000);
    for (const node of nodes) expect(node.node.status().term).toBe(term);
    expect(leader.node.status().role).toBe("leader");
    filesystems.get(id)!.hold = undefined;
    release();
    expect(await stalled).toEqual({ status: "ok" });
    expect(leader.node.status()).toMatchObject({ id, term, role: "leader" });
  });

  it("also snapshots (and compacts the WAL) once enough bytes went into the log, whatever the entry count", async () => {
    const dir = await tempDirAfterTest();
    const base = await findFreeBasePort(1);
    const node = await startKvNode({
      id: 1,
      clusterId: "bytes",
      initialClusterState: "new",
      peers: [{ id: 1, host: "127.0.0.1", port: base, api: { host: "127.0.0.1", port: base + 100 } }],
      dataDir: join(dir, "node-1"),
      tickMs: 10,
      snapshotEveryEntries: 1_000_000,
      snapshotEveryWalBytes: 32 * 1024,
      logger: silentLogger,
    });
    closeAfterTest(node);
    while (node.node.status().role !== "leader") await new Promise((r) => setTimeout(r, 10));
    const big = "x".repeat(2000);
    for (let seq = 1; seq <= 10; seq++) await node.node.propose(put(`k${seq}`, big, seq));
    expect(node.node.status().snapshotIndex).toBe(0);
    for (let seq = 11; seq <= 20; seq++) await node.node.propose(put(`k${seq}`, big, seq));
    // The snapshot is written in the background (the pump does not wait for it).
    await eventually(async () => expect(node.node.status().snapshotIndex).toBeGreaterThan(10));
  });

  it("stops loudly, without crashing the process, when the core throws (a broken invariant or an unreadable log)", async () => {
    const nodes = await startThree({ snapshotEveryEntries: 25, seed: 6 });
    const leader = await leaderOf(nodes);
    const fatal = new Promise<Error>((resolve) => leader.node.onFatal(resolve));
    // Simulate the core failing on its next event (for example a WAL record that no longer reads back).
    const core = (leader.node as unknown as { core: { tick(): void } }).core;
    core.tick = () => {
      throw new Error("entry 7 failed its checksum");
    };
    const error = await fatal;
    expect(error.message).toBe("entry 7 failed its checksum");
    await expect(leader.node.propose(put("x", "1", 1))).rejects.toMatchObject({ code: "NODE_ERR_CLOSED" });
    const next = await leaderOf(nodes.filter((n) => n !== leader));
    expect(await next.node.propose(put("y", "2", 1, "c9"))).toEqual({ status: "ok" });
  });
});
