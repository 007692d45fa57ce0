/**
 * The node's initial election tick advance (src/node/election-tick-advance.ts): on cores
 * over memory storage, how many ticks a starting node counts at once and when it then
 * campaigns (seeded, so a failing seed replays exactly); on three in-process nodes, that a
 * follower restarting into a cluster with a leader does not disturb it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/kv/command.js";
import { startKvNode } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { initialElectionTickAdvance } from "../../src/node/election-tick-advance.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { until } from "../waiting.js";
import { closeAfterTest, closeKvNodes, startThree } from "./kv-nodes.js";
import { MemoryStorage } from "../../src/raft/index.js";
import type { RaftCore } from "../../src/raft/types.js";
import { message, MessageType, newCore, seededRandom } from "../raft/helpers.js";

const ELECTION_TICKS = 10;

/** Advances as the node does at start, then ticks until the core campaigns: the ticks after the advance. */
function ticksToCampaignAfterStart(core: RaftCore, advance: boolean): number {
  const ticks = advance ? initialElectionTickAdvance(core, 1, ELECTION_TICKS) : 0;
  for (let i = 0; i < ticks; i++) core.tick();
  expect(core.softState().role).toBe("follower");
  for (let after = 1; after <= 4 * ELECTION_TICKS; after++) {
    core.tick();
    if (core.softState().role !== "follower") return after;
  }
  throw new Error("never campaigned");
}

const seeds = Array.from({ length: 40 }, (_, i) => 101 + i);

describe("initial election tick advance", () => {
  it("a voter of several starting without a leader campaigns after 2..electionTimeout + 1 ticks instead of electionTimeout..2 x electionTimeout - 1", () => {
    const advanced = new Set<number>();
    for (const seed of seeds) {
      const withAdvance = ticksToCampaignAfterStart(newCore(1, [1, 2, 3], new MemoryStorage(), { random: seededRandom(seed) }), true);
      const without = ticksToCampaignAfterStart(newCore(1, [1, 2, 3], new MemoryStorage(), { random: seededRandom(seed) }), false);
      expect(withAdvance, `seed ${seed}`).toBeGreaterThanOrEqual(2);
      expect(withAdvance, `seed ${seed}`).toBeLessThanOrEqual(ELECTION_TICKS + 1);
      // The same randomized timeout, counted from further on: the spread that keeps split votes rare is kept.
      expect(without - withAdvance, `seed ${seed}`).toBe(ELECTION_TICKS - 2);
      advanced.add(withAdvance);
    }
    expect(advanced.size).toBeGreaterThan(3);
  });

  it("a single voter campaigns (and leads) after 1..electionTimeout ticks", () => {
    for (const seed of seeds) {
      const core = newCore(1, [1], new MemoryStorage(), { random: seededRandom(seed) });
      expect(initialElectionTickAdvance(core, 1, ELECTION_TICKS)).toBe(ELECTION_TICKS - 1);
      const ticks = ticksToCampaignAfterStart(core, true);
      expect(ticks, `seed ${seed}`).toBeGreaterThanOrEqual(1);
      expect(ticks, `seed ${seed}`).toBeLessThanOrEqual(ELECTION_TICKS);
    }
  });

  it("nothing is advanced for a node that knows a leader, a learner, or a node that may not campaign", () => {
    const follower = newCore(1, [1, 2, 3]);
    follower.step(message({ type: MessageType.HEARTBEAT, from: 2, to: 1, term: 1 }));
    expect(follower.softState().leader).toBe(2);
    expect(initialElectionTickAdvance(follower, 1, ELECTION_TICKS)).toBe(0);
    const learner = newCore(4, [1, 2, 3], new MemoryStorage(), { learners: [4] });
    expect(initialElectionTickAdvance(learner, 4, ELECTION_TICKS)).toBe(0);
    const outsider = newCore(5, [1, 2, 3]);
    expect(initialElectionTickAdvance(outsider, 5, ELECTION_TICKS)).toBe(0);
  });

  it("an election timeout of 2 ticks or less is not advanced below zero", () => {
    expect(initialElectionTickAdvance(newCore(1, [1, 2, 3]), 1, 2)).toBe(0);
    expect(initialElectionTickAdvance(newCore(1, [1, 2, 3]), 1, 1)).toBe(0);
  });
});

afterEach(closeKvNodes);

describe("initial election tick advance on running nodes", () => {
  it("a follower restarted into a cluster that has a leader does not disturb it (PreVote, CheckQuorum)", async () => {
    const disks = new Map([1, 2, 3].map((id) => [id, new MemoryFileSystem()]));
    const nodes = await startThree({ fs: (id) => disks.get(id)! });
    const leader = await until("a leader", () => nodes.find((n) => n.node.status().role === "leader"));
    const { term } = leader.node.status();
    const put = (key: string) => encodeCommand({ op: "put", clientId: "", seq: 0, key, value: new TextEncoder().encode("v") });
    expect(await leader.node.propose(put("before"))).toEqual({ status: "ok" });
    const follower = nodes.find((n) => n !== leader)!;
    const id = follower.node.status().id;
    await follower.close();
    const restarted = closeAfterTest(
      await startKvNode({ id, clusterId: "test", dataDir: `/data/node-${id}`, storage: { fs: disks.get(id)!, wal: { segmentSizeBytes: 1024 * 1024 } }, tickMs: 10, seed: 99, logger: silentLogger }),
    );
    // It starts without a leader and counts 8 of its 10 election ticks at once: it may
    // campaign before the leader's heartbeat reaches it; its pre-vote must change nothing.
    await until("the restarted follower to hear the leader", () => restarted.node.status().leader === leader.node.status().id);
    expect(await leader.node.propose(put("after"))).toEqual({ status: "ok" });
    await until("the restarted follower to apply the write", () => restarted.kv.get("after") !== undefined);
    for (const node of [leader, restarted, ...nodes.filter((n) => n !== leader && n !== follower)]) {
      expect(node.node.status()).toMatchObject({ term, leader: leader.node.status().id });
    }
  });
});
