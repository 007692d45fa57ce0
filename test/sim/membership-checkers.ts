/**
 * Safety checkers for cluster membership (Raft thesis chapter 4), next to the ones of
 * checkers.ts (election safety, leader completeness and state machine safety hold
 * across configurations there: they never look at who the members are).
 *
 * Each configuration is judged from the logs, decoded by the disk on its own
 * (disk.ts), never from the core's ConfigLog:
 *   - config-transition: every configuration entry written anywhere follows the one
 *     before it in that log by a safe step: at most one voter changed (thesis 4.2), or
 *     into a joint configuration whose outgoing half is the previous voters, or out of a
 *     joint one to its incoming half (thesis 4.3); no joint-to-joint step; a removed id
 *     never comes back.
 *   - one-change-at-a-time: a configuration entry a leader appends in its term T has
 *     before it, in that log, a configuration the leader knows committed and not joint
 *     (the automatic leave entry excepted, which follows its committed joint entry), and
 *     the leader has committed an entry of T (thesis 4.1 and its erratum); so at most one
 *     configuration entry of a leader is ever above its commit index. Checked when the
 *     leader hands the entry out in a Ready, with its commit index at that moment.
 *   - config-in-force: the core's configuration in force is the latest one of its log:
 *     the durable log plus what is not durable yet (the unstable entries and snapshot).
 *     Checked on every live node after every tick and right after every (re)start; when
 *     nothing is outstanding, the host's copy built from Ready.clusterConfig agrees too.
 *   - snapshot-config: a snapshot's configuration is the one in force at its index.
 *   - commit-quorum: every commit index a leader reaches is held durably (in the log with
 *     the leader's term at that index, or under a snapshot) by a majority of the voters of
 *     its configuration in force, of both halves while joint. Learners are never counted.
 *     A voter repairing storage damage counts for the indexes its repair mark says it may
 *     have held: it may have acknowledged them before the damage, and it votes for nobody
 *     until it holds them again (src/raft/REPAIR.md).
 */
import { EntryType, type ClusterConfig, type Entry } from "../../src/proto/schema.js";
import type { RaftCore, SoftState } from "../../src/raft/types.js";
import { SafetyViolation } from "./checkers.js";
import { configInForceOf, logTermOf, unstableOf } from "./core-internals.js";
import { decodeConfig, type IndexedConfig, type SimDisk } from "./disk.js";
import type { VirtualClock } from "./time.js";

/** A configuration in one line, every field (members with their addresses) included: also the comparison key. */
export function describeConfig(config: ClusterConfig): string {
  const members = config.members.map((m) => `${m.id}@${m.peerAddress}/${m.apiAddress}`).join(",");
  return `voters [${config.voters.join(",")}] outgoing [${config.votersOutgoing.join(",")}] learners [${config.learners.join(",")}] removed [${config.removed.join(",")}] members [${members}]`;
}

function isJointConfig(config: ClusterConfig): boolean {
  return config.votersOutgoing.length > 0;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  const sortedA = [...a].sort((x, y) => x - y);
  const sortedB = [...b].sort((x, y) => x - y);
  return sortedA.length === sortedB.length && sortedA.every((id, i) => id === sortedB[i]);
}

function changedCount(a: readonly number[], b: readonly number[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}

/** `next` is the configuration that leaves the joint `previous`: its incoming half alone. */
function isLeaveOf(previous: ClusterConfig, next: ClusterConfig): boolean {
  return isJointConfig(previous) && !isJointConfig(next) && sameIds(previous.voters, next.voters);
}

/** Whether `holds` is true for a majority of `voters` (an empty half has no say). */
function majorityHolds(voters: readonly number[], holds: (id: number) => boolean): boolean {
  return voters.length === 0 || voters.filter(holds).length * 2 > voters.length;
}

interface CommitRecord {
  incarnation: number;
  commit: number;
  /** The term this node led in, while it still is in that term (a leader removing itself steps down at its commit). */
  leaderTerm: number;
}

export class MembershipCheckers {
  /** The disk of a node, for the commit-quorum check; set by the cluster. */
  diskOf: (id: number) => SimDisk | undefined = () => undefined;
  /** The mutation test turns this off to show that the deeper checkers catch an unsafe step too. */
  checkTransitions = true;
  private readonly commits = new Map<number, CommitRecord>();
  /** Per node, what the last config-in-force check compared and found equal (objects, compared by identity). */
  private readonly lastAgreement = new Map<number, readonly unknown[]>();
  /** Per node, the host's copy last found equal to the core's configuration. */
  private readonly hostAgreement = new Map<number, ClusterConfig>();
  /** Configurations of entries not yet durable, decoded once. */
  private readonly decoded = new WeakMap<Entry, ClusterConfig>();

  constructor(private readonly clock: VirtualClock) {}

  private fail(property: string, detail: string): never {
    throw new SafetyViolation(property, this.clock.now(), detail);
  }

  /** After node `id` wrote `entries` durably (the disk already decoded their configurations). */
  afterDurableEntries(id: number, disk: SimDisk, entries: readonly Entry[]): void {
    if (!this.checkTransitions) return;
    const floor = disk.snapshotConfig().index;
    for (const entry of entries) {
      if (entry.type !== EntryType.CLUSTER_CONFIG || entry.index <= floor) continue;
      const previous = disk.configAt(entry.index - 1);
      const next = decodeConfig(entry);
      const problem = this.unsafeTransition(previous.config, next);
      if (problem !== undefined) {
        this.fail("config-transition", `node ${id} wrote configuration ${entry.index} (term ${entry.term}) after configuration ${previous.index}: ${problem}\n    before: ${describeConfig(previous.config)}\n    after:  ${describeConfig(next)}`);
      }
    }
  }

  private unsafeTransition(previous: ClusterConfig, next: ClusterConfig): string | undefined {
    if (next.voters.length === 0) return "no voter left";
    const reused = [...next.voters, ...next.votersOutgoing, ...next.learners].filter((id) => previous.removed.includes(id));
    if (reused.length > 0) return `removed ids ${reused.join(",")} are members again`;
    if (previous.voters.length === 0) return undefined; // the founding configuration
    if (isJointConfig(previous)) return isLeaveOf(previous, next) ? undefined : "a joint configuration is followed by something else than its incoming half";
    if (isJointConfig(next)) return sameIds(next.votersOutgoing, previous.voters) ? undefined : "the outgoing half of a joint configuration is not the previous voters";
    const changed = changedCount(previous.voters, next.voters);
    return changed <= 1 ? undefined : `${changed} voters changed in one step, without a joint configuration`;
  }

  /** A leader of `term` took a Ready whose entries it will append to its durable log. */
  onLeaderReady(id: number, term: number, core: RaftCore, disk: SimDisk, entries: readonly Entry[]): void {
    const commit = core.commitIndex();
    const first = entries.length > 0 ? entries[0]!.index : Number.POSITIVE_INFINITY;
    const log: IndexedConfig[] = [disk.snapshotConfig(), ...disk.configEntries().filter((c) => c.index < first)];
    for (const entry of entries) {
      if (entry.type !== EntryType.CLUSTER_CONFIG) continue;
      const next = { index: entry.index, config: decodeConfig(entry) };
      if (entry.term === term) this.checkAppendedChange(id, term, commit, logTermOf(core, commit), log[log.length - 1]!, next);
      log.push(next);
    }
    const pending = log.filter((c) => c.index > commit);
    const ownPending = pending.filter((c) => c.index >= first && entries[c.index - first]!.term === term);
    if (ownPending.length > 0 && pending.length > 1) {
      this.fail("one-change-at-a-time", `leader ${id} of term ${term} has configuration entries ${pending.map((c) => c.index).join(",")} above its commit index ${commit}`);
    }
  }

  private checkAppendedChange(id: number, term: number, commit: number, termAtCommit: number, previous: IndexedConfig, next: IndexedConfig): void {
    const what = `leader ${id} of term ${term} appended configuration ${next.index}`;
    if (previous.index > commit) this.fail("one-change-at-a-time", `${what} while configuration ${previous.index} was not committed (commit ${commit})`);
    if (isJointConfig(previous.config) && !isLeaveOf(previous.config, next.config)) {
      this.fail("one-change-at-a-time", `${what} while the joint configuration ${previous.index} was not left`);
    }
    if (termAtCommit !== term) this.fail("one-change-at-a-time", `${what} before committing an entry of its term (the entry at its commit index ${commit} has term ${termAtCommit})`);
  }

  /**
   * The core's configuration in force equals the latest one of its log (durable, then not
   * yet durable); `hostCopy`, when given, is what the host learned from Ready.clusterConfig.
   */
  checkConfigInForce(id: number, core: RaftCore, disk: SimDisk, hostCopy?: ClusterConfig): void {
    const expected = this.configInForceOfLog(core, disk);
    const actual = configInForceOf(core);
    // The same objects as at the last check found equal: nothing to compare again.
    const compared = [expected.config, actual.config, expected.index, actual.index];
    const last = this.lastAgreement.get(id);
    if (last === undefined || last.some((value, i) => value !== compared[i])) {
      const fromEntry = expected.index > disk.snapshotConfig().index;
      if (describeConfig(actual.config) !== describeConfig(expected.config) || (fromEntry && actual.index !== expected.index)) {
        this.fail("config-in-force", `node ${id}: the core has configuration ${actual.index} (${describeConfig(actual.config)}), its log says ${expected.index} (${describeConfig(expected.config)})`);
      }
      this.lastAgreement.set(id, compared);
    }
    if (hostCopy !== undefined && this.hostAgreement.get(id) !== hostCopy) {
      if (describeConfig(hostCopy) !== describeConfig(actual.config)) {
        this.fail("config-in-force", `node ${id}: the host learned ${describeConfig(hostCopy)} from Ready.clusterConfig, the core has ${describeConfig(actual.config)}`);
      }
      this.hostAgreement.set(id, hostCopy);
    }
  }

  /**
   * The configuration in force by a node's log alone: the latest configuration entry of the
   * log the core holds (the durable log, overlaid with the unstable snapshot and entries),
   * else the snapshot's configuration.
   */
  private configInForceOfLog(core: RaftCore, disk: SimDisk): IndexedConfig {
    const unstable = unstableOf(core);
    const snapshot = unstable.snapshot;
    let latest: IndexedConfig;
    let durable: readonly IndexedConfig[];
    if (snapshot !== undefined) {
      // Installing it keeps the durable entries after it only when the log matches it there (section 7).
      const storage = disk.storage;
      const keeps = snapshot.index >= storage.firstIndex() - 1 && snapshot.index <= storage.lastIndex() && storage.term(snapshot.index) === snapshot.term;
      latest = { index: snapshot.index, config: snapshot.config };
      durable = keeps ? disk.configEntries().filter((c) => c.index > snapshot.index) : [];
    } else {
      latest = disk.snapshotConfig();
      durable = disk.configEntries();
    }
    const unstableFrom = unstable.entries.length > 0 ? unstable.offset : Number.POSITIVE_INFINITY;
    for (const config of durable) if (config.index < unstableFrom) latest = config;
    for (const entry of unstable.entries) {
      if (entry.type !== EntryType.CLUSTER_CONFIG) continue;
      let config = this.decoded.get(entry);
      if (config === undefined) {
        config = decodeConfig(entry);
        this.decoded.set(entry, config);
      }
      latest = { index: entry.index, config };
    }
    return latest;
  }

  /** The configuration written into a snapshot at `index` is the one the core has in force there. */
  checkSnapshotConfig(id: number, index: number, written: ClusterConfig, core: RaftCore): void {
    const fromCore = core.clusterConfigAt(index);
    if (describeConfig(written) !== describeConfig(fromCore)) {
      this.fail("snapshot-config", `node ${id} snapshot at ${index}: its log says ${describeConfig(written)}, the core ${describeConfig(fromCore)}`);
    }
  }

  /** After every message and every pump: a commit index a leader reached must be durable on a quorum of voters. */
  observeCommit(id: number, incarnation: number, soft: SoftState, core: RaftCore): void {
    const commit = core.commitIndex();
    let record = this.commits.get(id);
    if (record === undefined || record.incarnation !== incarnation) {
      record = { incarnation, commit, leaderTerm: 0 };
      this.commits.set(id, record);
    }
    const leaderTerm = soft.role === "leader" ? soft.term : record.leaderTerm === soft.term ? record.leaderTerm : 0;
    if (commit > record.commit && leaderTerm !== 0) this.checkCommitQuorum(id, leaderTerm, commit, logTermOf(core, commit), core.clusterConfig().config);
    record.commit = commit;
    record.leaderTerm = leaderTerm;
  }

  private checkCommitQuorum(id: number, term: number, commit: number, entryTerm: number, config: ClusterConfig): void {
    const holds = (voter: number): boolean => {
      const disk = this.diskOf(voter);
      if (disk === undefined) return false;
      // A voter repairing a lost log may have acknowledged up to its mark's lostToIndex before
      // the damage (an acknowledgement still in flight counts); it votes for nobody until it
      // holds all of that again (src/raft/REPAIR.md, rules 1 and 4), so it still counts here.
      const mark = disk.repairMark();
      if (mark?.logLost && commit <= mark.lostToIndex) return true;
      const storage = disk.storage;
      if (commit <= storage.snapshotMeta().index) return true;
      return commit <= storage.lastIndex() && storage.term(commit) === entryTerm;
    };
    if (config.voters.length === 0) this.fail("commit-quorum", `leader ${id} of term ${term} committed ${commit} with no voter in its configuration`);
    for (const half of [config.voters, config.votersOutgoing]) {
      if (majorityHolds(half, holds)) continue;
      const holders = half.filter(holds);
      this.fail(
        "commit-quorum",
        `leader ${id} of term ${term} committed index ${commit} (term ${entryTerm}) under ${describeConfig(config)}, but of voters [${half.join(",")}] only [${holders.join(",")}] hold it durably`,
      );
    }
  }
}
