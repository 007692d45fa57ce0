/**
 * A node whose storage is damaged starts in repair mode and is repaired from its peers
 * (src/raft/REPAIR.md), in-process with real TCP and an in-memory disk per node (kept
 * across restarts, damaged between them).
 */
import { afterEach, describe, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { Counter, leaderOf, type Started } from "./in-process.js";
import { until } from "../waiting.js";
import { createNode } from "../../src/node/raft-node.js";
import type { PeerConfig, RaftNodeOptions } from "../../src/node/options.js";
import { createLogger, silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { listSegments } from "../../storage/wal/inspect.js";
import { decodeMemberFile, MEMBER_FILE_NAME } from "../../src/node/member-file.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/transport.js";


const running: Started[] = [];
afterEach(async () => {
  for (const started of running.splice(0)) await started.node.close().catch(() => undefined);
});

const disks = new Map<number, MemoryFileSystem>();

async function start(id: number, peers: PeerConfig[], options: Partial<RaftNodeOptions<number>> = {}): Promise<Started> {
  const counter = new Counter();
  if (!disks.has(id)) disks.set(id, new MemoryFileSystem());
  const node = await createNode<number>({
    id,
    clusterId: "repair",
    dataDir: `/data/node-${id}`,
    stateMachine: counter,
    initialClusterState: "new",
    peers,
    tickMs: 10,
    seed: id,
    snapshotEveryEntries: 1_000_000,
    storage: { fs: disks.get(id)!, wal: { segmentSizeBytes: 64 * 1024 } },
    logger: process.env.RAFTWAL_TEST_VERBOSE ? createLogger({ level: "debug" }).child({ test: "repair" }) : silentLogger,
    ...options,
  });
  const started = { id, node, counter };
  running.push(started);
  return started;
}

const one = new TextEncoder().encode("1");

async function cluster(options: Partial<RaftNodeOptions<number>> = {}): Promise<{ peers: PeerConfig[]; nodes: Started[] }> {
  disks.clear();
  const base = await findFreeBasePort(3);
  const peers = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, apiAddress: `127.0.0.1:${base + 100 + id}` }));
  const nodes = await Promise.all(peers.map((peer) => start(peer.id, peers, options)));
  await until("a leader", () => leaderOf(nodes));
  return { peers, nodes };
}

async function stop(nodes: Started[], victim: Started): Promise<void> {
  await victim.node.close();
  running.splice(running.indexOf(victim), 1);
  nodes.splice(nodes.indexOf(victim), 1);
}

describe("repair from peers", () => {
  it("a follower with a flipped bit in a sealed segment repairs its log and serves the right state", async () => {
    const { peers, nodes } = await cluster();
    const leader = leaderOf(nodes)!;
    for (let i = 0; i < 150; i++) await leader.node.propose(new TextEncoder().encode("1".padEnd(600, " ")));
    const victim = nodes.find((n) => n !== leader)!;
    await until("the follower to apply everything", () => victim.counter.value === 150);
    await stop(nodes, victim);
    const disk = disks.get(victim.id)!;
    const first = (await listSegments(`/data/node-${victim.id}/wal`, disk))[0];
    disk.flipBit(first.path, 30_000);
    const back = await start(victim.id, peers);
    nodes.push(back);
    expect(back.node.status().repairing).toMatchObject({ hardStateLost: false });
    expect(back.node.status().repairing!.lostFromIndex).toBeGreaterThan(1);
    await until("the repair to complete", () => back.node.status().repairing === undefined);
    await until("the repaired node to apply everything", () => back.counter.value === 150);
    expect(back.node.metrics.repairsCompleted.get).toBeDefined();
    expect(await disk.exists(`/data/node-${victim.id}/REPAIRING`)).toBe(false);
    expect(await leaderOf(nodes)!.node.propose(one)).toBe(151);
  });

  it("a follower whose hard state is damaged rejoins, and never votes twice in a term", async () => {
    const { peers, nodes } = await cluster();
    const leader = leaderOf(nodes)!;
    for (let i = 0; i < 10; i++) await leader.node.propose(one);
    const victim = nodes.find((n) => n !== leader)!;
    const termBefore = victim.node.status().term;
    await stop(nodes, victim);
    disks.get(victim.id)!.flipBit(`/data/node-${victim.id}/hardstate/hardstate`, 14);
    const back = await start(victim.id, peers);
    nodes.push(back);
    expect(back.node.status().repairing).toMatchObject({ hardStateLost: true });
    await until("the repair to complete", () => back.node.status().repairing === undefined);
    // It took the highest term it heard of with a vote for itself: no other vote in that term.
    expect(back.node.status().term).toBeGreaterThanOrEqual(termBefore);
    await until("the node to follow and apply", () => back.counter.value === 10);
  });

  it("a follower whose only snapshot is damaged (the WAL compacted to it) loses every configuration naming it: restarted without peers or a listen address, it listens where its MEMBER file says and repairs", async () => {
    const { nodes } = await cluster({ snapshotEveryEntries: 50 });
    const leader = leaderOf(nodes)!;
    for (let i = 0; i < 60; i++) await leader.node.propose(one);
    const victim = nodes.find((n) => n !== leader)!;
    await until("the follower to apply everything and snapshot", () => victim.counter.value === 60 && victim.node.status().snapshotIndex > 0);
    const address = victim.node.address();
    await stop(nodes, victim);
    const disk = disks.get(victim.id)!;
    const snapshotDirectory = `/data/node-${victim.id}/snap`;
    const snapshots = (await disk.list(snapshotDirectory)).filter((name) => name.endsWith(".snap"));
    expect(snapshots).toHaveLength(1);
    disk.flipBit(`${snapshotDirectory}/${snapshots[0]}`, 40, 3);
    // An "existing" start with neither peers nor listen: what `raftwal node --id N --dir D` does.
    const back = await start(victim.id, [], { initialClusterState: "existing", peers: undefined });
    nodes.push(back);
    expect(back.node.status()).toMatchObject({ configIndex: 0, membership: "joining", repairing: { lostFromIndex: 1 } });
    expect(back.node.address()).toEqual(address);
    expect(back.node.self()).toEqual({ id: victim.id, peerAddress: `127.0.0.1:${address.port}`, apiAddress: `127.0.0.1:${address.port + 101}` });
    await until("the repair to complete", () => back.node.status().repairing === undefined);
    await until("the repaired node to apply everything", () => back.counter.value === 60);
    expect(back.node.status().membership).toBe("voter");
    expect(await leaderOf(nodes)!.node.propose(one)).toBeGreaterThan(60);
  });

  it("the MEMBER file: written at bootstrap, refused to another node, rewritten when damaged", async () => {
    const { peers, nodes } = await cluster();
    const victim = nodes.find((n) => n !== leaderOf(nodes))!;
    const disk = disks.get(victim.id)!;
    const dataDir = `/data/node-${victim.id}`;
    const path = `${dataDir}/${MEMBER_FILE_NAME}`;
    const peer = peers.find((p) => p.id === victim.id)!;
    const saved = { id: victim.id, clusterId: "repair", peerAddress: `127.0.0.1:${peer.port}`, apiAddress: peer.apiAddress };
    expect(decodeMemberFile(await disk.readFile(path))).toEqual({ kind: "saved", member: saved });
    await stop(nodes, victim);
    // Another node started on this directory: refused (its log and votes are this node's).
    disks.set(99, disk);
    await expect(start(99, peers, { dataDir, initialClusterState: "existing" })).rejects.toMatchObject({ code: "NODE_ERR_WRONG_DATA_DIR" });
    // A flipped bit: the file is damage, ignored; the node starts and writes it again from its configuration.
    disk.flipBit(path, 30, 0);
    expect(decodeMemberFile(await disk.readFile(path)).kind).toBe("damaged");
    nodes.push(await start(victim.id, peers, { initialClusterState: "existing" }));
    expect(decodeMemberFile(await disk.readFile(path))).toEqual({ kind: "saved", member: saved });
  });

  it("a leader redials an unreachable peer within an election timeout, however long it was down", async () => {
    const seen: TcpTransportOptions[] = [];
    const transport = (options: TcpTransportOptions) => (seen.push(options), new TcpTransport(options));
    await cluster({ transport, tickMs: 20, electionTimeoutTicks: 15 });
    expect(seen.map((options) => options.backoff?.delayMsMax)).toEqual([300, 300, 300]);
  });

  it("with onStorageCorruption \"stop\" a damaged node refuses to start, naming the damage", async () => {
    const { peers, nodes } = await cluster();
    const victim = nodes.find((n) => n !== leaderOf(nodes))!;
    await stop(nodes, victim);
    disks.get(victim.id)!.flipBit(`/data/node-${victim.id}/hardstate/hardstate`, 14);
    await expect(start(victim.id, peers, { onStorageCorruption: "stop" })).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
  });
});
