/**
 * The node runtime's side of membership (Raft thesis chapter 4; the core decides, see
 * src/raft/config-log.ts): how a data directory starts, the member view operators see,
 * and membership requests waiting for their configuration to take hold.
 *
 * Starting (etcd's --initial-cluster-state, made explicit):
 *   - "new": an empty directory bootstraps a new cluster. Its first log entry is the
 *     initial configuration (every member with its addresses) at index 1, term 1, and the
 *     hard state is term 1, commit 1. Every founding member writes the same entry (members
 *     sorted by id), so the logs match at index 1 and any leader holds it (as etcd does).
 *   - "join": an empty directory is a new member: no configuration at all; it never
 *     campaigns and waits for a leader that added it (as a learner) to send it the log.
 *   - "existing" (the default): the directory must hold state. An empty one is refused:
 *     a member that lost its data must not come back under its old id, because it has
 *     forgotten its votes and the entries it acknowledged (Raft would then lose committed
 *     entries or elect two leaders in one term).
 * A directory that holds state ignores the mode: its log knows the configuration.
 */
import { RaftwalError } from "../raft/errors.js";
import { EntryType, type ClusterConfig, type Member } from "../proto/schema.js";
import { isJoint, isLearner, sortedUnique } from "../raft/cluster-config.js";
import { encodeConfigEntry } from "../raft/config-log.js";
import type { PeerAddress } from "../transport/tls.js";
import type { RaftStorage } from "../../storage/raft-storage.js";
import { NodeErrorCode, timeoutError } from "./errors.js";

export type InitialClusterState = "new" | "join" | "existing";

/** A founding member, as `createNode({ peers })` takes it. */
export interface PeerConfig extends PeerAddress {
  id: number;
  /** The application's API address ("host:port"), replicated with the configuration. */
  apiAddress?: string;
}

export interface MemberView extends Member {
  /** "leaving": a voter of the outgoing half only, while a joint configuration is left. */
  role: "voter" | "learner" | "leaving";
}

/** The configuration in force, as operators see it. */
export interface MembershipView {
  /** Index of the log entry (or snapshot) the configuration comes from. */
  index: number;
  /** Known committed on this node (else it may still be replaced by a new leader). */
  committed: boolean;
  /** A joint configuration (C_old,new) is being left. */
  joint: boolean;
  members: MemberView[];
}

export function formatAddress(address: PeerAddress): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** "host:port" (IPv6 in brackets) to an address; undefined when it is not one. */
export function parseAddress(text: string): PeerAddress | undefined {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) return undefined;
  return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
}

/** The initial configuration of a new cluster: every founding member a voter. */
export function bootstrapConfig(peers: readonly PeerConfig[]): ClusterConfig {
  const members = [...peers]
    .sort((a, b) => a.id - b.id)
    .map((peer) => ({ id: peer.id, peerAddress: formatAddress(peer), apiAddress: peer.apiAddress ?? "" }));
  return { voters: sortedUnique(members.map((m) => m.id)), votersOutgoing: [], learners: [], members, removed: [] };
}

/** A directory with no hard state file, no log entry and no snapshot has never run. */
export function holdsNoState(storage: RaftStorage): boolean {
  return !storage.recovery.hardState.fileExisted && storage.lastIndex() === 0 && storage.snapshotMeta().index === 0;
}

/**
 * Prepares storage for the mode (see the top of this file); returns what happened, for
 * the log. Durable before the core starts: the configuration entry, then the hard state
 * (its commit may only cover entries the log holds).
 */
export async function prepareDataDirectory(
  storage: RaftStorage,
  options: { id: number; mode: InitialClusterState; peers: readonly PeerConfig[] | undefined; dataDir: string },
): Promise<"bootstrapped" | "joining" | "restarted"> {
  if (!holdsNoState(storage)) return "restarted";
  if (options.mode === "join") return "joining";
  if (options.mode === "new") {
    const peers = options.peers ?? [];
    if (!peers.some((peer) => peer.id === options.id)) {
      throw new RaftwalError(NodeErrorCode.BAD_BOOTSTRAP, `node ${options.id} bootstraps a new cluster but is not among its members (${peers.map((p) => p.id).join(", ") || "none"})`);
    }
    await storage.append([{ index: 1, term: 1, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(bootstrapConfig(peers)) }]);
    await storage.saveHardState({ term: 1, vote: 0, commit: 1 });
    return "bootstrapped";
  }
  throw new RaftwalError(
    NodeErrorCode.EMPTY_DATA_DIR,
    `data directory ${options.dataDir} holds no state, but node ${options.id} was started as an existing member. ` +
      "A member that lost its data must not rejoin under its old id: it has forgotten its votes and the entries it acknowledged. " +
      `Replace it: remove node ${options.id} from the cluster, then start a new node with a new id that joins (initialClusterState "join", raftwal node --join). ` +
      'To found a new cluster instead, start every member with initialClusterState "new" (raftwal node --initial-cluster-state new).',
  );
}

/**
 * A node's place in the configuration in force: "voter" (of C_new, or of the only half),
 * "learner", "leaving" (a voter of the outgoing half only, while a joint configuration is
 * left), "joining" (in no configuration yet: it waits for a leader to add it), "removed".
 */
export type NodeMembership = MemberView["role"] | "joining" | "removed";

export function nodeMembership(config: ClusterConfig, id: number, removed: boolean): NodeMembership {
  if (removed || config.removed.includes(id)) return "removed";
  if (config.voters.includes(id)) return "voter";
  if (isLearner(config, id)) return "learner";
  return config.votersOutgoing.includes(id) ? "leaving" : "joining";
}

export function membershipView(config: ClusterConfig, index: number, committed: boolean): MembershipView {
  const role = (id: number): MemberView["role"] => (config.voters.includes(id) ? "voter" : isLearner(config, id) ? "learner" : "leaving");
  const members = config.members.map((member) => ({ ...member, role: role(member.id) }));
  return { index, committed, joint: isJoint(config), members };
}

interface ChangeWaiter {
  index: number;
  term: number;
  /** The change's own entry was applied and is joint: waiting for the configuration that leaves it. */
  joint: boolean;
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Membership requests waiting to take hold: resolved once their configuration entry is
 * applied with the term it was proposed in (else another leader overwrote it: rejected),
 * and, for a joint change, once a configuration that leaves the joint one is applied.
 */
export class PendingConfigChanges {
  private waiters: ChangeWaiter[] = [];

  add(index: number, term: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.timer !== timer);
        reject(timeoutError(`membership change at index ${index}`, timeoutMs));
      }, timeoutMs);
      timer.unref();
      this.waiters.push({ index, term, joint: false, resolve, reject, timer });
    });
  }

  /** A configuration entry was applied. */
  applied(index: number, term: number, config: ClusterConfig): void {
    const joint = isJoint(config);
    const remaining: ChangeWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.index === index && waiter.term !== term) {
        clearTimeout(waiter.timer);
        waiter.reject(new RaftwalError(NodeErrorCode.PROPOSAL_LOST, `the membership change at index ${index} (term ${waiter.term}) was replaced by an entry of term ${term}`));
      } else if ((waiter.index === index || (waiter.joint && index > waiter.index)) && !joint) {
        clearTimeout(waiter.timer);
        waiter.resolve();
      } else {
        if (waiter.index === index) waiter.joint = true;
        remaining.push(waiter);
      }
    }
    this.waiters = remaining;
  }

  /**
   * A snapshot from the leader replaced the log up to `index`: a change at or below it has
   * an unknown fate (the entry is gone), except a joint one that the snapshot's
   * configuration has left.
   */
  snapshotInstalled(index: number, config: ClusterConfig, error: () => Error): void {
    const left = !isJoint(config);
    const remaining: ChangeWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.index > index) {
        remaining.push(waiter);
        continue;
      }
      clearTimeout(waiter.timer);
      if (waiter.joint && left) waiter.resolve();
      else waiter.reject(error());
    }
    this.waiters = remaining;
  }

  rejectAll(error: Error): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.waiters = [];
  }
}
