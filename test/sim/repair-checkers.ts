/**
 * Safety checkers for the repair of storage damage from peers (src/raft/REPAIR.md), next to
 * those of checkers.ts. They judge what nodes send, as the host sends it:
 *
 *   - recovering-no-vote: a node whose core is recovering (RaftCore.recovering()) neither
 *     campaigns (VOTE requests) nor grants a vote or a pre-vote (VOTE_RESPONSE or
 *     PRE_VOTE_RESPONSE with reject unset). Rule 1.
 *   - ack-durable: an acknowledgement (APPEND_RESPONSE with reject unset, a SNAPSHOT_RESPONSE
 *     saying done) claims only what the sender's disk holds at that moment: the index it
 *     acknowledges is at most its durable last index. For a repairing node this is rule 3:
 *     nothing of its lost range is acknowledged before it holds it durably again. It holds
 *     for every node (acknowledgements pass the persistence gate).
 *   - double-vote: a node that voted for the leader of a term votes for nobody else in that
 *     term, across any loss of its hard state: its vote counted there, and a second one could
 *     elect a second leader. Every vote is remembered for good: a vote sent to a candidate or
 *     made durable, checked when it is cast and when a leader of the term appears. A node's
 *     own vote for itself (durable while it campaigns) counts as a second vote after a vote
 *     for another candidate in that term; before one, it is no obstacle: that campaign died
 *     with the crash that lost the hard state (a candidate counts votes only in the
 *     incarnation that made its own vote durable), so voting for another candidate in that
 *     term is then harmless, and not always avoidable (the term may have lived only in the
 *     lost hard state). Two votes in a term for candidates that never won counted nowhere; if
 *     both won, election safety fails too. The vote for itself that ends the repair of a lost
 *     hard state (rule 5: it takes the highest term heard with a vote for itself, so that it
 *     votes for nobody else there) is a follower's, not a campaign's.
 *   - repaired-durable: the repair mark goes (the host removes it once core.recovering() is
 *     undefined after an advance, as raft-node.ts does) only when what the core repaired is
 *     durable: for a lost hard state, the durable hard state holds the term the core took
 *     when it finished (with its vote) or a later term. Otherwise a crash would restart the
 *     node with neither the mark nor that term, free to vote where its lost vote counts.
 *   - unrepairable-justified: a node stops with RAFT_ERR_UNREPAIRABLE only while a quorum of
 *     the voters of its configuration (of both halves while joint) carries a repair mark:
 *     lost state not yet repaired. Rule 6.
 */
import { MessageType, type ClusterConfig, type Message } from "../../src/proto/schema.js";
import type { HardState, RaftLogStorage } from "../../src/raft/types.js";
import { SafetyViolation } from "./checkers.js";
import type { VirtualClock } from "./time.js";

/** Whether `holds` is true for a majority of `voters` (an empty half has no say). */
function majorityHolds(voters: readonly number[], holds: (id: number) => boolean): boolean {
  return voters.length === 0 || voters.filter(holds).length * 2 > voters.length;
}

export class RepairCheckers {
  /** node -> term -> the candidates it voted for (never forgotten; its own vote only after another's). */
  private readonly votes = new Map<number, Map<number, Set<number>>>();
  /** term -> its leader (election safety makes it one). */
  private readonly leaderOfTerm = new Map<number, number>();
  /** Votes recorded, for tests that check the checker saw any. */
  votesRecorded = 0;
  /** The mutation test turns this off to show that the deeper checkers catch a double vote too. */
  checkDoubleVotes = true;
  /** Grants, campaigns and acknowledgements checked against a recovering sender. */
  recoveringChecks = 0;
  /** Nodes whose core is repairing a lost hard state. */
  private readonly repairingHardState = new Set<number>();
  /** node -> the term its core took when it finished repairing a lost hard state (until the mark goes). */
  private readonly adoptedTerm = new Map<number, number>();

  constructor(private readonly clock: VirtualClock) {}

  private fail(property: string, detail: string): never {
    throw new SafetyViolation(property, this.clock.now(), detail);
  }

  /** Node `id` sends `message`; `recovering` is its core's recovering() now, `storage` its disk. */
  onSend(id: number, message: Message, recovering: boolean, storage: RaftLogStorage): void {
    switch (message.type) {
      case MessageType.VOTE:
        if (recovering) this.fail("recovering-no-vote", `node ${id} campaigns in term ${message.term} while recovering`);
        return;
      case MessageType.PRE_VOTE_RESPONSE:
      case MessageType.VOTE_RESPONSE:
        if (message.reject) return;
        if (recovering) this.fail("recovering-no-vote", `node ${id} grants its ${message.type === MessageType.VOTE_RESPONSE ? "vote" : "pre-vote"} in term ${message.term} to ${message.to} while recovering`);
        if (message.type === MessageType.VOTE_RESPONSE) this.recordVote(id, message.term, message.to, "sent");
        return;
      case MessageType.APPEND_RESPONSE:
        if (!message.reject) this.checkAck(id, message.index, message, recovering, storage);
        return;
      case MessageType.SNAPSHOT_RESPONSE:
        if (!message.reject && message.snapshot?.done) this.checkAck(id, message.snapshot.meta.index, message, recovering, storage);
        return;
      default:
        return;
    }
  }

  private checkAck(id: number, index: number, message: Message, recovering: boolean, storage: RaftLogStorage): void {
    if (recovering) this.recoveringChecks += 1;
    if (index <= storage.lastIndex()) return;
    const what = message.type === MessageType.APPEND_RESPONSE ? "entries" : "a snapshot";
    this.fail("ack-durable", `node ${id}${recovering ? " (recovering)" : ""} acknowledges ${what} up to ${index} to ${message.to} in term ${message.term}, its disk holds up to ${storage.lastIndex()}`);
  }

  /** Node `id` made `hard` durable; `campaigning`: it is a candidate in hard.term now. */
  afterDurableVote(id: number, hard: HardState, campaigning: boolean): void {
    if (hard.vote === 0 || (hard.vote === id && !campaigning)) return;
    this.recordVote(id, hard.term, hard.vote, hard.vote === id ? "its own, durable" : "durable");
  }

  /** Node `id` is the leader of `term` (first seen). */
  onLeader(term: number, id: number): void {
    this.leaderOfTerm.set(term, id);
    for (const voter of this.votes.keys()) this.checkVotes(voter, term, `${id} became leader of term ${term}`);
  }

  private recordVote(id: number, term: number, candidate: number, how: string): void {
    let byTerm = this.votes.get(id);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.votes.set(id, byTerm);
    }
    let candidates = byTerm.get(term);
    if (candidates === undefined) {
      candidates = new Set();
      byTerm.set(term, candidates);
    }
    if (candidates.has(candidate)) return;
    // Its own campaign first: it died before any later vote in this term (see above).
    if (candidate === id && candidates.size === 0) return;
    candidates.add(candidate);
    this.votesRecorded += 1;
    this.checkVotes(id, term, `its vote for ${candidate} (${how})`);
  }

  /** Node `id` voted for the leader of `term`: for nobody else in that term. */
  private checkVotes(id: number, term: number, cause: string): void {
    if (!this.checkDoubleVotes) return;
    const candidates = this.votes.get(id)?.get(term);
    const leader = this.leaderOfTerm.get(term);
    if (candidates === undefined || candidates.size < 2 || leader === undefined || !candidates.has(leader)) return;
    const others = [...candidates].filter((candidate) => candidate !== leader);
    this.fail("double-vote", `node ${id} voted for ${others.join(", ")} in term ${term}, and for ${leader}, the leader of that term (seen at ${cause})`);
  }

  /** After every message and pump: node `id`'s core's recovery state and term. */
  observeRecovery(id: number, recovering: { hardStateLost: boolean } | undefined, term: number): void {
    if (recovering?.hardStateLost) {
      this.repairingHardState.add(id);
    } else if (this.repairingHardState.delete(id)) {
      this.adoptedTerm.set(id, term);
    }
  }

  /** The host removes node `id`'s repair mark; `durable` is its disk's hard state. */
  onMarkCleared(id: number, durable: HardState): void {
    const term = this.adoptedTerm.get(id);
    this.adoptedTerm.delete(id);
    if (term === undefined || durable.term > term || (durable.term === term && durable.vote !== 0)) return;
    this.fail("repaired-durable", `node ${id}'s repair mark goes while its durable hard state ${JSON.stringify(durable)} lacks term ${term} and its vote, taken to repair its lost hard state`);
  }

  /** Node `id` stopped with RAFT_ERR_UNREPAIRABLE under `config`; `marked(v)` tells whether voter v's disk carries a repair mark. */
  onUnrepairable(id: number, config: ClusterConfig, marked: (voter: number) => boolean): void {
    const halves = [config.voters, config.votersOutgoing];
    if (halves.every((half) => majorityHolds(half, marked))) return;
    const damaged = [...new Set([...config.voters, ...config.votersOutgoing])].filter(marked);
    this.fail("unrepairable-justified", `node ${id} stopped as unrepairable, but only voters [${damaged.join(",")}] of [${config.voters.join(",")}]${config.votersOutgoing.length > 0 ? ` + [${config.votersOutgoing.join(",")}]` : ""} have lost state`);
  }
}
