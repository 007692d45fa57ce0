/**
 * The node's initial election tick advance (src/node/election-tick-advance.ts), on cores
 * over memory storage: how many ticks a starting node counts at once, and when it then
 * campaigns. Seeded, so a failing seed replays exactly.
 */
import { describe, expect, it } from "vitest";
import { initialElectionTickAdvance } from "../../src/node/election-tick-advance.js";
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
