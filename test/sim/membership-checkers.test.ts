/**
 * The membership checkers fire on violations, fed by hand: an unsafe configuration step,
 * a change appended while another is pending or before the leader committed in its term,
 * a core whose configuration in force is not the one of its log, a snapshot with the
 * wrong configuration, and a commit index that only learners support.
 */
import { describe, expect, it } from "vitest";
import { clusterConfigCodec, EntryType, type ClusterConfig, type Entry } from "../../src/proto/schema.js";
import { createRaft, MemoryStorage } from "../../src/raft/index.js";
import type { RaftCore } from "../../src/raft/types.js";
import { foundingConfig, simMember } from "./cluster.js";
import { SimDisk } from "./disk.js";
import { MembershipCheckers } from "./membership-checkers.js";
import { VirtualClock } from "./time.js";

function config(voters: number[], options: { outgoing?: number[]; learners?: number[]; removed?: number[] } = {}): ClusterConfig {
  const members = [...new Set([...voters, ...(options.outgoing ?? []), ...(options.learners ?? [])])].sort((a, b) => a - b).map(simMember);
  return { voters, votersOutgoing: options.outgoing ?? [], learners: options.learners ?? [], members, removed: options.removed ?? [] };
}

const configEntry = (index: number, term: number, value: ClusterConfig): Entry => ({ index, term, type: EntryType.CLUSTER_CONFIG, data: clusterConfigCodec.encode(value) });
const normal = (index: number, term: number): Entry => ({ index, term, type: EntryType.NORMAL, data: new TextEncoder().encode(`c${index}`) });

function checkers(): MembershipCheckers {
  const clock = new VirtualClock();
  clock.advance();
  return new MembershipCheckers(clock);
}

/** A disk holding `entries` (the founding configuration {1,2,3} first). */
function diskWith(...entries: Entry[]): SimDisk {
  const disk = new SimDisk();
  disk.appendEntries([configEntry(1, 1, foundingConfig([1, 2, 3])), ...entries]);
  return disk;
}

/** A core on a copy of `disk`'s log (a real core: the checkers read its internals). */
function coreOn(disk: SimDisk, commit: number, term = 2): RaftCore {
  const storage = new MemoryStorage();
  storage.append(disk.storage.entries(1, disk.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
  storage.setHardState({ term, vote: 0, commit });
  return createRaft({ id: 1, storage, random: () => 0.5 });
}

describe("membership checkers fire on violations", () => {
  it("config-transition: two voters changed in one step, joint to joint, a wrong outgoing half, a removed id back", () => {
    const check = (previous: ClusterConfig, next: ClusterConfig) => {
      const disk = diskWith(configEntry(2, 1, previous));
      const entry = configEntry(3, 2, next);
      disk.appendEntries([entry]);
      checkers().afterDurableEntries(1, disk, [entry]);
    };
    expect(() => check(config([1, 2, 3], { learners: [4, 5] }), config([3, 4, 5], { removed: [1, 2] }))).toThrow(/config-transition.*4 voters changed in one step/);
    expect(() => check(config([3, 4, 5], { outgoing: [1, 2, 3] }), config([3, 4, 6], { outgoing: [3, 4, 5] }))).toThrow(/config-transition/);
    expect(() => check(config([1, 2, 3]), config([3, 4, 5], { outgoing: [1, 2] }))).toThrow(/config-transition.*outgoing half/);
    expect(() => check(config([1, 2, 3], { removed: [4] }), config([1, 2, 3], { learners: [4] }))).toThrow(/config-transition.*removed ids 4/);
    // Safe steps: one voter, into a joint configuration, out of it.
    check(config([1, 2, 3], { learners: [4] }), config([1, 2, 3, 4]));
    check(config([1, 2, 3], { learners: [4, 5] }), config([3, 4, 5], { outgoing: [1, 2, 3] }));
    check(config([3, 4, 5], { outgoing: [1, 2, 3] }), config([3, 4, 5], { removed: [1, 2] }));
  });

  it("one-change-at-a-time: a change after an uncommitted one, while joint, or before the leader committed in its term", () => {
    const disk = diskWith(normal(2, 2), configEntry(3, 2, config([1, 2, 3], { learners: [4] })));
    // Configuration 3 is not committed (commit 2): a leader of term 2 must not append another.
    expect(() => checkers().onLeaderReady(1, 2, coreOn(disk, 2), disk, [configEntry(4, 2, config([1, 2, 3, 4]))])).toThrow(/one-change-at-a-time.*not committed/);
    // Committed, but the leader of term 3 has committed nothing of its term yet.
    const later = diskWith(normal(2, 2), configEntry(3, 2, config([1, 2, 3], { learners: [4] })), normal(4, 3));
    expect(() => checkers().onLeaderReady(1, 3, coreOn(later, 3, 3), later, [configEntry(5, 3, config([1, 2, 3, 4]))])).toThrow(/one-change-at-a-time.*before committing an entry of its term/);
    checkers().onLeaderReady(1, 3, coreOn(later, 4, 3), later, [configEntry(5, 3, config([1, 2, 3, 4]))]);
    // A joint configuration, committed: only the entry that leaves it may follow.
    const joint = diskWith(normal(2, 2), configEntry(3, 2, config([1, 4, 5], { outgoing: [1, 2, 3] })));
    expect(() => checkers().onLeaderReady(1, 2, coreOn(joint, 3), joint, [configEntry(4, 2, config([1, 4, 6], { outgoing: [1, 4, 5] }))])).toThrow(/one-change-at-a-time.*joint/);
    checkers().onLeaderReady(1, 2, coreOn(joint, 3), joint, [configEntry(4, 2, config([1, 4, 5], { removed: [2, 3] }))]);
  });

  it("config-in-force: the core's configuration differs from its log's, or from the host's copy", () => {
    const disk = diskWith(configEntry(2, 1, config([1, 2, 3], { learners: [4] })));
    const agreeing = coreOn(disk, 2);
    checkers().checkConfigInForce(1, agreeing, disk, agreeing.clusterConfig().config);
    const other = diskWith(configEntry(2, 1, config([1, 2, 3], { learners: [5] })));
    expect(() => checkers().checkConfigInForce(1, coreOn(other, 2), disk)).toThrow(/config-in-force/);
    expect(() => checkers().checkConfigInForce(1, agreeing, disk, foundingConfig([1, 2, 3]))).toThrow(/config-in-force.*Ready.clusterConfig/);
  });

  it("snapshot-config: a snapshot written with another configuration than the core's at its index", () => {
    const disk = diskWith(configEntry(2, 1, config([1, 2, 3], { learners: [4] })));
    const core = coreOn(disk, 2);
    checkers().checkSnapshotConfig(1, 2, disk.configAt(2).config, core);
    expect(() => checkers().checkSnapshotConfig(1, 2, disk.configAt(1).config, core)).toThrow(/snapshot-config/);
  });

  it("commit-quorum: a leader's commit index held only by itself and learners", () => {
    const membership = checkers();
    const withEntry = diskWith(normal(2, 2));
    const without = diskWith();
    const disks = new Map([[1, withEntry], [2, without], [3, without], [4, withEntry], [5, withEntry]]);
    membership.diskOf = (id) => disks.get(id);
    const leader = { role: "leader" as const, term: 2, leader: 1 };
    // A core whose configuration has learners 4 and 5 and whose commit index reached 2.
    const core = coreOn(diskWith(normal(2, 2), configEntry(3, 2, config([1, 2, 3], { learners: [4, 5] }))), 1);
    membership.observeCommit(1, 1, leader, core);
    const advanced = Object.assign(Object.create(Object.getPrototypeOf(core)) as RaftCore, core, { commitIndex: () => 2 });
    expect(() => membership.observeCommit(1, 1, leader, advanced)).toThrow(/commit-quorum.*only \[1\] hold it/);
    disks.set(2, withEntry);
    membership.observeCommit(1, 1, leader, advanced);
  });
});
