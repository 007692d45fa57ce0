/**
 * Opening a node's parts, in order: the storage (recovery), the data directory's MEMBER
 * file (who this node is: own-member.ts), the start mode (bootstrap, join or restart:
 * membership.ts), the application's state from the newest snapshot, the Raft core (its
 * configuration comes from the log and snapshot), and the transport, connected to the
 * members of that configuration and listening where it names this node (or, when storage
 * damage took every configuration naming it, where the MEMBER file does).
 */
import { randomInt } from "node:crypto";
import { RaftwalError, RaftwalErrorCode } from "../raft/errors.js";
import type { ClusterConfig } from "../proto/schema.js";
import { memberOf } from "../raft/cluster-config.js";
import { createRaft } from "../raft/index.js";
import type { RaftCore } from "../raft/types.js";
import { seededRandom } from "../rng.js";
import { openRaftStorage, type RaftStorage } from "../../storage/raft-storage.js";
import type { NodeTransport } from "../transport/node-transport.js";
import type { PeerAddress } from "../transport/tls.js";
import { TcpTransport } from "../transport/transport.js";
import { BACKOFF_DEFAULTS } from "../transport/backoff.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import type { Logger } from "./logger.js";
import { formatAddress, parseAddress, prepareDataDirectory } from "./membership.js";
import { OwnMember } from "./own-member.js";
import { electionTimeoutTicksOf, HEARTBEAT_INTERVAL_TICKS_DEFAULT, ON_STORAGE_CORRUPTION_DEFAULT, TICK_MS_DEFAULT, type RaftNodeOptions } from "./options.js";

export interface NodeParts {
  storage: RaftStorage;
  core: RaftCore;
  transport: NodeTransport;
  start: "bootstrapped" | "joining" | "restarted";
  /** This node's own member record, saved in its data directory (MEMBER). */
  ownMember: OwnMember;
}

export async function openNodeParts<Result>(options: RaftNodeOptions<Result>, logger: Logger): Promise<NodeParts> {
  const storage = await openRaftStorage(options.dataDir, { ...options.storage, onCorruption: options.onStorageCorruption ?? ON_STORAGE_CORRUPTION_DEFAULT });
  try {
    for (const warning of storage.recovery.warnings) logger.warn(warning);
    for (const action of storage.recovery.actions) logger.info(action);
    logDamage(storage, logger);
    const ownMember = await OwnMember.open(options.storage?.fs ?? new NodeFileSystem(), options.dataDir, { id: options.id, clusterId: options.clusterId }, logger);
    const start = await prepareDataDirectory(storage, {
      id: options.id,
      mode: options.initialClusterState ?? "existing",
      peers: options.peers,
      dataDir: options.dataDir,
    });
    const snapshot = storage.snapshotMeta();
    if (snapshot.index > 0) await options.stateMachine.restore(storage.readSnapshot(), snapshot);
    const core = createRaft({
      ...options.raft,
      id: options.id,
      storage,
      random: seededRandom(options.seed ?? randomInt(0, 2 ** 32 - 1)),
      electionTimeoutTicks: electionTimeoutTicksOf(options),
      heartbeatIntervalTicks: options.heartbeatIntervalTicks ?? HEARTBEAT_INTERVAL_TICKS_DEFAULT,
      appliedIndex: snapshot.index,
      damage: storage.damage(),
    });
    await ownMember.observe(core.clusterConfig().config);
    const transport = buildTransport(options, core, ownMember, logger);
    return { storage, core, transport, start, ownMember };
  } catch (error) {
    await storage.close().catch(() => undefined);
    throw error;
  }
}

function buildTransport<Result>(options: RaftNodeOptions<Result>, core: RaftCore, ownMember: OwnMember, logger: Logger): NodeTransport {
  const config = core.clusterConfig().config;
  const founding = options.peers?.find((peer) => peer.id === options.id);
  // The configuration names this node's address, or the MEMBER file kept it (damage took every configuration naming it).
  const saved = parseAddress(ownMember.saved()?.peerAddress ?? "");
  const listen = options.listen ?? memberAddress(config, options.id) ?? saved ?? (founding && { host: founding.host, port: founding.port });
  if (!listen) {
    throw new RaftwalError(
      RaftwalErrorCode.INVALID_ARGUMENT,
      `node ${options.id} has no peer address in the configuration nor in its data directory's MEMBER file: give \`listen\` (a joining node must)`,
    );
  }
  const create = options.transport ?? ((transportOptions) => new TcpTransport(transportOptions));
  return create({
    nodeId: options.id,
    clusterId: options.clusterId,
    listen,
    peers: transportPeers(config, core.clusterConfigAt(core.appliedIndex()), options.id),
    backoff: { delayMsMax: redialDelayMsMax(options) },
    advertisedAddress: memberOf(config, options.id)?.peerAddress || ownMember.saved()?.peerAddress || formatAddress(listen),
    // Only a committed configuration's list of removed ids is final (ids are never reused).
    isRemovedPeer: (id) => core.clusterConfigAt(core.commitIndex()).removed.includes(id),
    logger: logger.child({ component: "transport" }),
    tls: options.tls,
  });
}

/**
 * The longest wait before redialling a peer that could not be reached: one election timeout
 * (at least the first retry's delay). A node waiting for its leader (a restarted follower, a
 * node repairing storage damage with no configuration to find its peers in) is then reached
 * within about the time a follower waits for a heartbeat, however long it was down; the
 * transport's own ceiling (5 s) would leave it waiting for several election timeouts.
 */
export function redialDelayMsMax(options: Pick<RaftNodeOptions<unknown>, "tickMs" | "electionTimeoutTicks">): number {
  const electionTimeoutMs = (options.tickMs ?? TICK_MS_DEFAULT) * electionTimeoutTicksOf(options);
  return Math.max(BACKOFF_DEFAULTS.initialDelayMs, electionTimeoutMs);
}

export function memberAddress(config: ClusterConfig, id: number): PeerAddress | undefined {
  const member = memberOf(config, id);
  return member ? parseAddress(member.peerAddress) : undefined;
}

/**
 * Whom the transport connects to and accepts: every member but this node of the
 * configuration in force and of the last applied one. A member that an uncommitted change
 * removes still counts until the change commits: a leader that removes itself leads until
 * then (thesis 4.2.2), and its followers must still hear it and answer it for that change
 * to commit (with the configuration in force alone they would cut it off at once, and it
 * could never commit its own removal nor learn of it).
 */
export function transportPeers(inForce: ClusterConfig, applied: ClusterConfig, selfId: number): Map<number, PeerAddress> {
  return new Map([...peerAddresses(applied, selfId), ...peerAddresses(inForce, selfId)]);
}

/** Every member but this node, with its peer address. */
export function peerAddresses(config: ClusterConfig, selfId: number): Map<number, PeerAddress> {
  const peers = new Map<number, PeerAddress>();
  for (const member of config.members) {
    const address = parseAddress(member.peerAddress);
    if (member.id !== selfId && address) peers.set(member.id, address);
  }
  return peers;
}

/** One warning line per damaged part found at open, and one for an unfinished repair. */
function logDamage(storage: RaftStorage, logger: Logger): void {
  const report = storage.recovery.damage;
  if (report?.log) {
    const { segment, offset, reason, damagedEntries, intactEntriesAfter, lastKnownIndex, setAside } = report.log;
    logger.warn("storage damage: log entries lost, to be repaired from the leader", {
      segment,
      offset,
      reason,
      damagedEntries: damagedEntries.slice(0, 20),
      intactEntriesAfter,
      lastKnownIndex,
      keptUpTo: storage.lastIndex(),
      setAside,
    });
  }
  if (report?.hardState) logger.warn("storage damage: hard state lost (term and vote unknown), to be learned from the voters", report.hardState);
  if (report?.snapshot) logger.warn(`storage damage: ${report.snapshot.reason}`, report.snapshot);
  const damage = storage.damage();
  if (damage && !report) logger.warn("storage still under repair from an earlier start", { ...damage });
}
