/**
 * Protocol-aware recovery of a node whose storage was damaged (Alagappan et al.,
 * "Protocol-Aware Recovery for Consensus-Based Storage", FAST'18: CTRL). The safety
 * argument is in REPAIR.md; in short, a node that lost durable state must not let that
 * loss count toward any quorum until it holds the state again:
 *
 *   - Lost log (entries from `lostFromIndex` on; it may have acknowledged up to
 *     `lostToIndex`): it neither campaigns nor grants votes (its log no longer shows what
 *     it promised), tells the leader where its log ends (MSG_REPAIR, so the leader stops
 *     trusting its old match index and resends from there), and recovers once its durable
 *     log, refilled by the leader, reaches both `lostToIndex` and the leader's last index
 *     at the time of the repair (MSG_REPAIR_RESPONSE), so it holds every entry it could
 *     have been counted for. Until then, its acknowledgements claim only what it holds
 *     durably again (the usual persistence gate).
 *   - Lost term and vote: it may have voted in any term it cannot name, for a candidate
 *     that won with it, or whose campaign is still under way (and may win later with it).
 *     Once its log is whole (so that its configuration is), it asks the voters for their
 *     terms (MSG_TERM_PROBE, a fresh nonce each round, so that no answer from before the
 *     damage counts) until, in each half of the configuration it votes in, every other
 *     voter has answered (a candidate whose campaign is alive is among them, with that
 *     term or a later one) and enough of them are whole to meet every majority that may
 *     have counted its vote already (their terms are real). The highest term heard is
 *     then at least any term in which its lost vote counts or can still count, so it
 *     takes it with a vote for itself (it will vote for nobody else there) and only votes
 *     in later terms.
 *   - A quorum of voters recovering with no leader in sight cannot be repaired without
 *     inventing data: RAFT_ERR_UNREPAIRABLE, and the node stops loudly. Only a node whose
 *     configuration names it judges so; one whose damage took every configuration naming
 *     it waits for a leader (REPAIR.md, rule 6).
 */
import { MessageType, type HardState, type Message } from "../proto/schema.js";
import { isMember } from "./cluster-config.js";
import { RaftErrorCode, RaftwalError } from "./errors.js";
import { jointQuorum, majority } from "./quorum.js";
import { newMessage } from "./messages.js";
import type { Raft } from "./raft.js";

/** What the host found damaged at start (the storage's damage report). */
export interface StorageDamage {
  /** The first log index lost; 0 when the log is whole. The log the core starts with ends before it. */
  lostFromIndex: number;
  /** The highest index the log may have held before the damage (acknowledged, perhaps). */
  lostToIndex: number;
  /** The term and vote were lost (damaged hard state). */
  hardStateLost: boolean;
}

/** Election timeouts without a leader, with a quorum recovering, before giving up. */
export const UNREPAIRABLE_TIMEOUTS = 3;

/** Term-probe round nonces are drawn from [1, ROUND_NONCE_MAX]. */
const ROUND_NONCE_MAX = 2 ** 31;

/** The recovery state of a Raft instance; undefined once whole again. */
export class Recovery {
  /** Still waiting for the log from this index (0: the log is whole). */
  lostFromIndex: number;
  /** The durable log must reach this index; raised by the leader's answer. */
  targetIndex: number;
  /** The leader answered MSG_REPAIR (it resends from lostFromIndex; targetIndex includes its last index). */
  repairAnswered = false;
  hardStateLost: boolean;
  /**
   * The term taken (with a vote for itself) once the voters answered; the repair of the hard
   * state ends only once a durable hard state holds it, or a later term (0: nothing pending).
   * Ending sooner would let the host remove its repair mark while a crash still loses them.
   */
  termTaken = 0;
  /** This round's answers to MSG_TERM_PROBE: the voter's term, and whether it is recovering too. */
  readonly answers = new Map<number, { term: number; recovering: boolean }>();
  /** This round's nonce, echoed by the answers: an answer to an earlier round is not counted. */
  round = 0;
  leaderlessTimeouts = 0;
  /** Ticks since the last round of asking; starts full, so the first tick asks at once. */
  ticksSinceAsking: number;

  constructor(damage: StorageDamage) {
    this.lostFromIndex = damage.lostFromIndex;
    this.targetIndex = damage.lostToIndex;
    this.hardStateLost = damage.hardStateLost;
    this.ticksSinceAsking = Number.MAX_SAFE_INTEGER;
  }

  whole(): boolean {
    return this.lostFromIndex === 0 && !this.hardStateLost && this.termTaken === 0;
  }
}

/** Every tick: once per election timeout, a round of asking (the first tick asks at once). */
export function tick(raft: Raft, recovery: Recovery): void {
  recovery.ticksSinceAsking += 1;
  if (recovery.ticksSinceAsking < raft.config.electionTimeoutTicks) return;
  recovery.ticksSinceAsking = 0;
  askRound(raft, recovery);
}

/** Asks again what is still missing, and gives up when nothing can help. */
function askRound(raft: Raft, recovery: Recovery): void {
  // No leader: none known, or none heard from for an election timeout (section 5.2). A
  // recovering node never campaigns, so a leader that died stays its `lead` for good.
  const leaderless = raft.lead === 0 || raft.electionElapsed >= raft.config.electionTimeoutTicks;
  recovery.leaderlessTimeouts = leaderless ? recovery.leaderlessTimeouts + 1 : 0;
  if (unrepairable(raft, recovery)) {
    throw new RaftwalError(
      RaftErrorCode.UNREPAIRABLE,
      `node ${raft.id} lost durable state and a quorum of voters is recovering with no leader for ${recovery.leaderlessTimeouts} election timeouts: the cluster may no longer hold every committed entry, and raftwal never invents data`,
    );
  }
  recovery.answers.clear();
  recovery.round = 1 + Math.floor(raft.config.random() * ROUND_NONCE_MAX);
  for (const peer of raft.voterPeers) {
    const probe = newMessage(MessageType.TERM_PROBE, raft.id, peer, 0);
    probe.index = recovery.round;
    raft.outbox.send(probe);
  }
  if (raft.lead !== 0 && recovery.lostFromIndex > 0 && !recovery.repairAnswered) askLeaderToRepair(raft, recovery);
}

function unrepairable(raft: Raft, recovery: Recovery): boolean {
  if (recovery.leaderlessTimeouts < UNREPAIRABLE_TIMEOUTS) return false;
  // Only a configuration naming this node is one to judge by. Damage that took every entry
  // naming it left none (an empty configuration is a "quorum" of nobody) or one from before
  // it was added, older than any the cluster now counts with: such a node waits for a
  // leader, as a joining node does, and the voters that still know the configuration judge.
  if (!isMember(raft.clusterConfig, raft.id)) return false;
  return jointQuorum(raft.clusterConfig, (id) => id === raft.id || recovery.answers.get(id)?.recovering === true);
}

/** A leader made contact: tell it where the log ends (once per contact until it answers). */
export function onLeaderContact(raft: Raft, recovery: Recovery, leader: number, first: boolean): void {
  if (recovery.lostFromIndex > 0 && !recovery.repairAnswered && first) askLeaderToRepair(raft, recovery, leader);
}

function askLeaderToRepair(raft: Raft, recovery: Recovery, leader = raft.lead): void {
  const request = newMessage(MessageType.REPAIR, raft.id, leader, raft.term);
  request.index = recovery.lostFromIndex;
  raft.outbox.send(request);
}

/**
 * Leader: `from` lost its log from message.index on. Its old match index no longer holds:
 * track it from the entry before, in probe state, so the next append resends from there
 * (or a snapshot, if that is compacted), and answer with the last index to repair up to.
 */
export function serveRepair(raft: Raft, message: Message): void {
  const progress = raft.progress.get(message.from);
  if (progress === undefined || message.index < 1) return;
  progress.match = Math.min(progress.match, message.index - 1);
  progress.becomeProbe();
  progress.recentActive = true;
  raft.appendsPending = true;
  const answer = newMessage(MessageType.REPAIR_RESPONSE, raft.id, message.from, raft.term);
  answer.index = raft.log.lastIndex();
  raft.outbox.send(answer);
}

export function onRepairAnswered(recovery: Recovery, message: Message): void {
  if (recovery.lostFromIndex === 0) return;
  recovery.repairAnswered = true;
  recovery.targetIndex = Math.max(recovery.targetIndex, message.index);
}

/** Any node: answer a term probe (sent with term 0: it changes nobody's term). */
export function answerTermProbe(raft: Raft, message: Message): void {
  const answer = newMessage(MessageType.TERM_PROBE_RESPONSE, raft.id, message.from, raft.term);
  answer.reject = raft.recovery !== undefined;
  answer.index = message.index;
  raft.outbox.send(answer);
}

/**
 * A voter's term arrived. Once the log is whole and, in each half this node votes in,
 * every other voter answered this round and enough of them are whole (see the top of this
 * file), the highest term heard is at least any term in which a lost vote of this node
 * counts or can still count: take it with a vote for itself. Returns the term to adopt,
 * or 0 while more is needed.
 */
export function recordTerm(raft: Raft, recovery: Recovery, message: Message): number {
  if (message.index !== recovery.round) return 0;
  recovery.answers.set(message.from, { term: message.term, recovering: message.reject });
  // A log still lost may hold a stale configuration, without voters the lost vote was cast among.
  if (!recovery.hardStateLost || recovery.lostFromIndex > 0) return 0;
  const config = raft.clusterConfig;
  for (const half of [config.voters, config.votersOutgoing]) {
    if (!half.includes(raft.id)) continue;
    const others = half.filter((id) => id !== raft.id);
    // Every other voter: a candidate whose campaign may still count the lost vote is one of them.
    if (others.some((id) => !recovery.answers.has(id))) return 0;
    // Enough of them whole to meet every majority that may have counted it (a winner's voters keep its term).
    const whole = others.filter((id) => recovery.answers.get(id)!.recovering === false).length;
    if (whole < half.length - majority(half.length) + 1) return 0;
  }
  let highest = raft.term;
  for (const answer of recovery.answers.values()) if (answer.term > highest) highest = answer.term;
  recovery.hardStateLost = false;
  return highest;
}

/** After the host made a Ready durable (`durable`: the hard state now on disk): is the term taken durable? */
export function checkTermDurable(recovery: Recovery, durable: HardState): void {
  const taken = recovery.termTaken;
  if (taken > 0 && (durable.term > taken || (durable.term === taken && durable.vote !== 0))) recovery.termTaken = 0;
}

/** After the host made a Ready durable: is the log whole again? */
export function checkLogRepaired(raft: Raft, recovery: Recovery): void {
  if (recovery.lostFromIndex === 0 || !recovery.repairAnswered) return;
  if (raft.log.persistedLastIndex() >= recovery.targetIndex) recovery.lostFromIndex = 0;
}
