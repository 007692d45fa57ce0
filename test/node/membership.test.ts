/**
 * Membership in the node runtime, in-process on 127.0.0.1 with real TCP and disk:
 * bootstrap versus join versus an existing member, the replace workflow (add a learner,
 * let it catch up, promote it, remove the dead member), nodes behind the configuration
 * accepting a leader it does not name (thesis 4.1), the removed node stopping and being
 * refused at the handshake with a reason on both ends, and
 * a leader removing itself (its followers keep it as a peer until the change commits).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { Counter, leaderOf, type Started } from "./in-process.js";
import { until } from "../waiting.js";
import { createNode } from "../../src/node/raft-node.js";
import type { PeerConfig, RaftNodeOptions } from "../../src/node/options.js";
import { createLogger, silentLogger } from "../../src/node/logger.js";


const running: Started[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const started of running.splice(0)) await started.node.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-membership-"));
  dirs.push(dir);
  return dir;
}

async function start(id: number, dir: string, options: Partial<RaftNodeOptions<number>>): Promise<Started> {
  const counter = new Counter();
  const node = await createNode<number>({
    id,
    clusterId: "membership",
    dataDir: join(dir, `node-${id}`),
    stateMachine: counter,
    tickMs: 10,
    seed: id,
    snapshotEveryEntries: 20,
    logger: process.env.RAFTWAL_TEST_VERBOSE ? createLogger({ level: "debug" }) : silentLogger,
    ...options,
  });
  const started = { id, node, counter };
  running.push(started);
  return started;
}

async function founding(count: number): Promise<{ dir: string; base: number; peers: PeerConfig[]; nodes: Started[] }> {
  const dir = await tempDir();
  const base = await findFreeBasePort(count + 2);
  const peers = Array.from({ length: count }, (_, i) => ({ id: i + 1, host: "127.0.0.1", port: base + i }));
  const nodes = await Promise.all(peers.map((peer) => start(peer.id, dir, { initialClusterState: "new", peers })));
  await until("a leader", () => leaderOf(nodes));
  return { dir, base, peers, nodes };
}

const encode = (n: number) => new TextEncoder().encode(String(n));

/** Closes a running node (its data directory stays, for a restart) and stops tracking it. */
async function stopNode(started: Started): Promise<void> {
  await started.node.close();
  running.splice(running.indexOf(started), 1);
}

/** Starts node `id` as a joining member on port base + id - 1 and has `leader` add it as a learner; resolves with the node and the configuration index of its addition. */
async function joinAsLearner(leader: Started, id: number, dir: string, base: number): Promise<{ joined: Started; addedAt: number }> {
  const port = base + id - 1;
  const joined = await start(id, dir, { initialClusterState: "join", listen: { host: "127.0.0.1", port } });
  const view = await leader.node.addLearner({ id, peerAddress: `127.0.0.1:${port}` });
  return { joined, addedAt: view.index };
}

describe("starting a node: new, join or existing", () => {
  it("a founded cluster restarts from its log alone; an empty directory of an existing member is refused", async () => {
    const { dir, nodes } = await founding(3);
    const leader = leaderOf(nodes)!;
    expect(await leader.node.propose(encode(5))).toBe(5);
    expect(leader.node.members().members.map((m) => [m.id, m.role])).toEqual([[1, "voter"], [2, "voter"], [3, "voter"]]);
    const follower = nodes.find((n) => n !== leader)!;
    await stopNode(follower);
    // No peers, no mode: the log holds the configuration.
    const again = await start(follower.id, dir, {});
    await until("the restarted node to apply the write", () => again.counter.value === 5);
    expect(again.node.members().members.map((m) => m.id)).toEqual([1, 2, 3]);
    await expect(start(9, dir, {})).rejects.toMatchObject({ code: "NODE_ERR_EMPTY_DATA_DIR", message: expect.stringContaining("Replace it") });
  });

  it("replaces a dead member: a new node joins as a learner, catches up by snapshot, is promoted; the dead one is removed", async () => {
    const { dir, base, nodes } = await founding(3);
    let leader = leaderOf(nodes)!;
    for (let i = 1; i <= 30; i++) await leader.node.propose(encode(1));
    const dead = nodes.find((n) => n !== leader)!;
    await stopNode(dead);
    const fresh = await start(4, dir, { initialClusterState: "join", listen: { host: "127.0.0.1", port: base + 3 } });
    expect(fresh.node.status()).toMatchObject({ voter: false, role: "follower" });
    await leader.node.addLearner({ id: 4, peerAddress: `127.0.0.1:${base + 3}` });
    await until("the learner to catch up", () => fresh.counter.value === 30);
    expect(fresh.node.status().snapshotIndex).toBeGreaterThan(0);
    await leader.node.promote(4);
    await leader.node.removeMember(dead.id);
    const view = leader.node.members();
    expect(view.members.map((m) => [m.id, m.role])).toEqual(nodes.filter((n) => n !== dead).map((n) => [n.id, "voter"]).concat([[4, "voter"]]).sort((a, b) => (a[0] as number) - (b[0] as number)));
    expect(view.committed).toBe(true);
    // The cluster now survives losing the old leader: {4, the other} are a majority of 3.
    const other = nodes.find((n) => n !== leader && n !== dead)!;
    await stopNode(leader);
    leader = await until("a new leader among the survivors", () => leaderOf([other, fresh]));
    expect(await leader.node.propose(encode(12))).toBe(42);
  });

  it("a new member whose first snapshot predates the leader's own addition still accepts that leader and catches up", async () => {
    // Seen in a torture run: the new node installed the leader's snapshot, whose configuration
    // named neither the new node nor the leader (added after it), and then refused the leader
    // at every handshake as an unknown peer, stuck at the snapshot's index for good.
    const { dir, base, nodes } = await founding(3);
    const first = leaderOf(nodes)!;
    for (let i = 1; i <= 22; i++) await first.node.propose(encode(1));
    await until("every founder to snapshot (every 20 entries)", () => nodes.every((n) => n.node.status().snapshotIndex >= 20));
    const { joined: fourth, addedAt: fourthAddedAt } = await joinAsLearner(first, 4, dir, base);
    await until("node 4 to catch up", () => fourth.counter.value === 22);
    await first.node.promote(4);
    first.node.transferLeadership(4);
    await until("node 4 to lead", () => leaderOf([...nodes, fourth]) === fourth);
    // Node 4's newest snapshot is the one it installed: older than its own addition.
    expect(fourth.node.status().snapshotIndex).toBeLessThan(fourthAddedAt);
    const { joined: fifth } = await joinAsLearner(fourth, 5, dir, base);
    await until("node 5 to catch up past the snapshot", () => fifth.counter.value === 22 && fifth.node.members().members.some((m) => m.id === 5));
    expect(fifth.node.status().snapshotIndex).toBeLessThan(fourthAddedAt);
    expect(await fourth.node.propose(encode(3))).toBe(25);
    await until("node 5 to apply the write", () => fifth.counter.value === 25);
  });

  it("a voter that was down while a node was added and became leader accepts it as leader when it comes back (thesis 4.1)", async () => {
    const { dir, base, nodes } = await founding(3);
    const first = leaderOf(nodes)!;
    for (let i = 1; i <= 5; i++) await first.node.propose(encode(1));
    const stale = nodes.find((n) => n !== first)!;
    await stopNode(stale);
    const { joined: fourth } = await joinAsLearner(first, 4, dir, base);
    await until("node 4 to catch up", () => fourth.counter.value === 5);
    await first.node.promote(4);
    first.node.transferLeadership(4);
    const live = nodes.filter((n) => n !== stale).concat([fourth]);
    await until("node 4 to lead", () => leaderOf(live) === fourth);
    expect(await fourth.node.propose(encode(3))).toBe(8);
    // The old leader leaves (the replaced node), and with it the appends it queued for the
    // voter that was down, which would otherwise tell that voter about node 4.
    const firstStopped = new Promise<Error>((resolve) => first.node.onFatal(resolve));
    await fourth.node.removeMember(first.id);
    expect(await firstStopped).toMatchObject({ code: "NODE_ERR_REMOVED" });
    const survivors = live.filter((n) => n !== first);
    // Its log names voters 1, 2, 3 only: the leader is a node no configuration of its own names.
    const back = await start(stale.id, dir, {});
    expect(back.node.members().members.map((m) => m.id)).not.toContain(4);
    await until("the voter to catch up from node 4", () => back.counter.value === 8);
    expect(back.node.members().members.map((m) => m.id).sort()).toEqual([stale.id, ...survivors.map((n) => n.id)].sort());
    expect(leaderOf([...survivors, back])).toBe(fourth);
  });

  it("a member removed while it runs applies its removal and stops", async () => {
    const { nodes } = await founding(3);
    const leader = leaderOf(nodes)!;
    const victim = nodes.find((n) => n !== leader)!;
    const stopped = new Promise<Error>((resolve) => victim.node.onFatal(resolve));
    await leader.node.removeMember(victim.id);
    expect(await stopped).toMatchObject({ code: "NODE_ERR_REMOVED" });
    expect(victim.node.status().removed).toBe(true);
    expect(leader.node.members().members.map((m) => m.id)).not.toContain(victim.id);
  });

  it("a member removed while it was down is refused at the handshake when it comes back, told why, and stops", async () => {
    const { dir, nodes } = await founding(3);
    const leader = leaderOf(nodes)!;
    const victim = nodes.find((n) => n !== leader)!;
    await stopNode(victim);
    await leader.node.removeMember(victim.id);
    // Its log never got the removal: it still thinks it is a voter, campaigns, and dials the others.
    const back = await start(victim.id, dir, {});
    expect(back.node.status().voter).toBe(true);
    const stopped = new Promise<Error>((resolve) => back.node.onFatal(resolve));
    expect(await stopped).toMatchObject({ code: "NODE_ERR_REMOVED" });
    expect(leaderOf(nodes.filter((n) => n !== victim))?.node.status().term).toBe(leader.node.status().term);
  });
});

describe("removing the leader (thesis 4.2.2)", () => {
  it("the leader commits its own removal, hands over, and stops; the request resolves on it", async () => {
    const { nodes } = await founding(3);
    const leader = leaderOf(nodes)!;
    const stopped = new Promise<Error>((resolve) => leader.node.onFatal(resolve));
    const view = await leader.node.removeMember(leader.id);
    expect(view.members.map((m) => m.id)).not.toContain(leader.id);
    expect(view.committed).toBe(true);
    expect(await stopped).toMatchObject({ code: "NODE_ERR_REMOVED" });
    const rest = nodes.filter((n) => n !== leader);
    const next = await until("a leader among the others", () => leaderOf(rest));
    expect(await next.node.propose(encode(3))).toBe(3);
  });
});
