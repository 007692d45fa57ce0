/**
 * The Raft state machine (extended Raft paper, sections 5 and 7; Raft thesis for
 * PreVote, CheckQuorum, ReadIndex and leadership transfer).
 *
 * Every message goes through `step`: terms are handled once there (section 5.1:
 * "If RPC request or response contains term T > currentTerm: set currentTerm = T,
 * convert to follower"; stale-term messages are dropped or answered), then the
 * message is dispatched to the current role's step function, which is assigned only
 * in becomeFollower / becomePreCandidate / becomeCandidate / becomeLeader.
 *
 * Leader-side replication lives in leader.ts, the follower's handlers in follower.ts.
 * All output goes through `outbox` (the persistence gate, outbox.ts).
 */
import { EntryType, MessageType, type ClusterConfig, type Entry, type HardState, type Message, type SnapshotMeta } from "../proto/schema.js";
import { isJoint, isVoter, memberIds, voterIds } from "./cluster-config.js";
import { planConfigChange, type ConfigChange } from "./config-change.js";
import { encodeConfigEntry } from "./config-log.js";
import { RaftErrorCode, RaftwalError, RaftwalErrorCode } from "./errors.js";
import type { NormalizedConfig } from "./config.js";
import { entrySizeBytes } from "./entry-size.js";
import * as follower from "./follower.js";
import { fail, invariant } from "./invariant.js";
import * as leader from "./leader.js";
import { EMPTY_BYTES, isTransferContext, newMessage, TRANSFER_CONTEXT } from "./messages.js";
import { NotLeaderError } from "./not-leader-error.js";
import { Outbox } from "./outbox.js";
import { Progress } from "./progress.js";
import { jointVote } from "./quorum.js";
import { RaftLog } from "./raft-log.js";
import { ReadOnly } from "./read-only.js";
import { Lease } from "./lease.js";
import * as recovery from "./recovery.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";
import type { ReadState, Role, SoftState } from "./types.js";

type StepFunction = (message: Message) => void;
type CampaignKind = "pre-vote" | "election" | "transfer";

export class Raft {
  readonly id: number;
  readonly config: NormalizedConfig;
  readonly log: RaftLog;
  readonly outbox = new Outbox();
  /**
   * The cluster configuration in force: the latest in the log (config-log.ts). The two
   * lists below are derived from it in refreshClusterConfig(), its only writer.
   */
  clusterConfig!: ClusterConfig;
  /** Voters of either half but this node: whom a campaign asks for votes. */
  voterPeers: number[] = [];
  /** Every member but this node, voters and learners: whom a leader replicates to. */
  peers: number[] = [];
  /** The configuration changed since the host last saw it (Ready.clusterConfig). */
  clusterConfigChanged = true;

  /** currentTerm (Figure 2). Invariant: never decreases. */
  term: number;
  /** votedFor in `term` (Figure 2); 0 for none. */
  vote: number;
  /** The leader of `term` as far as this node knows; 0 for unknown. */
  lead = 0;
  role: Role = "follower";
  private stepRole: StepFunction;
  private tickRole: () => void;

  /** Ticks since the last election timeout reset (heard from a leader, granted a vote, started a campaign). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** Drawn from [electionTimeoutTicks, 2 * electionTimeoutTicks) at every reset (section 5.2). */
  randomizedElectionTimeout = 0;
  /** Votes received in the current (pre-)campaign. */
  readonly votes = new Map<number, boolean>();

  // ---- Leader state (meaningful only while role === "leader") -------------------------
  readonly progress = new Map<number, Progress>();
  /** Progress of the peers, in `peers` order (the hot loops iterate this). */
  peerProgress: Progress[] = [];
  /** A member's match index (0 for an id without progress): the quorum functions read it. */
  readonly matchOf = (id: number): number => this.progress.get(id)?.match ?? 0;
  readOnly: ReadOnly | undefined = undefined;
  /** Lease-read state of this leadership (readMode "lease" only; lease.ts). */
  lease: Lease | undefined = undefined;
  /** The voter a leadership transfer is under way to; 0 for none (thesis section 3.10). */
  leadTransferee = 0;
  /** Entry bytes proposed in this term and not yet handed out committed. */
  uncommittedBytes = 0;
  /** New entries or a new commit index wait to be sent (batched until the host asks for messages). */
  appendsPending = false;
  /** A ReadIndex heartbeat round waits to be sent. */
  readHeartbeatPending = false;

  /** Set while this node repairs storage damage from its peers (recovery.ts); undefined when whole. */
  recovery: recovery.Recovery | undefined;

  /** Reads confirmed for the host (Ready.readStates). */
  readStates: ReadState[] = [];
  readonly snapshotReceiver = new SnapshotReceiver();

  constructor(config: NormalizedConfig) {
    this.id = config.id;
    this.config = config;
    const hard = config.storage.hardState();
    this.log = new RaftLog(config.storage, hard.commit, config.appliedIndex, config.initialConfig);
    this.log.configs.onChange = () => this.refreshClusterConfig();
    this.refreshClusterConfig();
    // The host reads the configuration it starts with through clusterConfig(); Readies report changes.
    this.clusterConfigChanged = false;
    this.term = hard.term;
    this.vote = hard.vote;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    const damage = config.damage;
    this.recovery = damage && (damage.lostFromIndex > 0 || damage.hardStateLost) ? new recovery.Recovery(damage) : undefined;
    this.becomeFollower(this.term, 0);
  }

  // ---- Views -------------------------------------------------------------------------

  softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Whether this node may campaign: a voter of the configuration in force (learners and removed nodes never do). */
  promotable(): boolean {
    // A node repairing lost state must not campaign: its log or its votes are not what it promised (recovery.ts).
    return isVoter(this.clusterConfig, this.id) && this.recovery === undefined;
  }

  /**
   * The configuration in force changed (an append, a truncation of an uncommitted
   * configuration entry, a snapshot): re-derive who votes and who is replicated to. The
   * only writer of clusterConfig, voterPeers and peers.
   */
  private refreshClusterConfig(): void {
    const config = this.log.configs.current().config;
    this.clusterConfig = config;
    this.voterPeers = voterIds(config).filter((id) => id !== this.id);
    this.peers = memberIds(config).filter((id) => id !== this.id);
    this.clusterConfigChanged = true;
    if (this.role === "leader") leader.trackMembers(this);
  }

  // ---- Role transitions (the only places that assign stepRole / tickRole) ------------

  /** Leaves any role for `term`'s follower; clears everything tied to the old role. */
  private reset(term: number): void {
    if (term !== this.term) {
      if (!(term > this.term)) fail(`term must not decrease (${this.term} -> ${term})`);
      this.term = term;
      this.vote = 0;
      // A newer leader may truncate what they acknowledge before it is durable (outbox.ts).
      this.outbox.dropWithheldAcknowledgements();
    }
    this.lead = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.drawElectionTimeout();
    this.votes.clear();
    this.leadTransferee = 0;
    this.readOnly = undefined;
    this.lease = undefined;
    this.progress.clear();
    this.peerProgress = [];
    this.uncommittedBytes = 0;
    this.appendsPending = false;
    this.readHeartbeatPending = false;
  }

  private drawElectionTimeout(): number {
    const base = this.config.electionTimeoutTicks;
    const draw = this.config.random();
    if (!(draw >= 0 && draw < 1)) fail(`random() must return a number in [0, 1), got ${draw}`);
    return base + Math.floor(draw * base);
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  /** Thesis section 9.6: ask for votes in term + 1 without changing any state yet. */
  private becomePreCandidate(): void {
    invariant(this.role !== "leader", "a leader cannot become a pre-candidate");
    this.votes.clear();
    this.lead = 0;
    this.electionElapsed = 0;
    this.randomizedElectionTimeout = this.drawElectionTimeout();
    this.role = "pre-candidate";
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  /** Section 5.2: "increment its current term ... vote for itself". */
  private becomeCandidate(): void {
    invariant(this.role !== "leader", "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    if (!(this.role === "candidate")) fail(`only a candidate can become leader (was ${this.role})`);
    invariant(this.log.unstable.snapshot === undefined, "a leader must not have a snapshot install pending");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    const next = this.log.lastIndex() + 1;
    const self = new Progress(next, this.config.inflightMessagesMax, this.config.inflightBytesMax);
    self.match = this.log.persistedLastIndex();
    self.becomeReplicate();
    self.recentActive = true;
    this.progress.set(this.id, self);
    leader.trackMembers(this);
    this.readOnly = new ReadOnly(this.id);
    if (this.config.readMode === "lease") this.lease = new Lease();
    // Section 5.4.2 / thesis 6.4: an entry of the new term, so that earlier entries
    // can commit and the leader learns the commit index.
    this.appendEntries([{ term: this.term, index: next, type: 0, data: EMPTY_BYTES }]);
  }

  // ---- Inputs --------------------------------------------------------------------------

  tick(): void {
    // The repair's own timer runs whatever the role: a follower that hears from its leader
    // never reaches an election timeout, but must still ask for what it lacks.
    if (this.recovery) recovery.tick(this, this.recovery);
    this.tickRole();
  }

  /**
   * Followers and candidates: campaign after a randomized election timeout (section 5.2).
   * A node that may not campaign (a learner, or a voter whose log does not say so yet) lets
   * the count run on, as etcd does: the lease of thesis 4.2.3 is measured from the last word
   * of a leader, and restarting it every timeout would keep such a node in the lease of a
   * dead leader for ever, refusing the votes a newer configuration needs from it.
   */
  private tickElection(): void {
    this.electionElapsed += 1;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    leader.tickLeader(this);
  }

  /**
   * Messages from any node of the cluster are handled, members or not: a node may lag
   * behind a configuration that added the sender (it must still follow that leader, and
   * answer a vote request, as etcd does); only members count toward a quorum, and a
   * leader ignores answers from nodes it does not track.
   */
  step(message: Message): void {
    // Term probes change nobody's term on the way in (recovery.ts); they are answered or counted here.
    if (message.type === MessageType.TERM_PROBE) return recovery.answerTermProbe(this, message);
    if (message.type === MessageType.TERM_PROBE_RESPONSE) return this.termProbed(message);
    if (message.from === this.id && message.type !== MessageType.VOTE_RESPONSE) return;
    if (message.term > this.term) {
      if (!this.handleHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.handleStaleTerm(message);
      return;
    }
    if (message.type === MessageType.VOTE || message.type === MessageType.PRE_VOTE) {
      this.handleVoteRequest(message);
      return;
    }
    this.stepRole(message);
  }

  /** Returns whether the message should still be processed. */
  private handleHigherTerm(message: Message): boolean {
    const type = message.type;
    if (type === MessageType.VOTE || type === MessageType.PRE_VOTE) {
      // Thesis section 4.2.3: a server that heard from a current leader within the
      // minimum election timeout does not grant votes nor update its term, so a
      // rejoining partitioned server cannot depose a healthy leader. A transfer
      // (TIMEOUT_NOW) campaign is exempt.
      const inLease = this.config.checkQuorum && this.lead !== 0 && this.electionElapsed < this.config.electionTimeoutTicks;
      if (inLease && !isTransferContext(message.context)) return false;
    }
    // A pre-vote changes no term; a granted pre-vote answer carries our own future term.
    if (type === MessageType.PRE_VOTE) return true;
    if (type === MessageType.PRE_VOTE_RESPONSE && !message.reject) return true;
    const fromLeader = type === MessageType.APPEND || type === MessageType.HEARTBEAT || type === MessageType.SNAPSHOT;
    this.becomeFollower(message.term, fromLeader ? message.from : 0);
    return true;
  }

  /**
   * Section 5.1: "If a server receives a request with a stale term number, it rejects
   * the request." The rejection carries our term, so the stale sender steps down
   * (Figure 2: "Reply false if term < currentTerm"). Stale responses are ignored.
   */
  private handleStaleTerm(message: Message): void {
    const type = message.type;
    if (type === MessageType.APPEND || type === MessageType.HEARTBEAT) {
      this.outbox.sendAfterPersist(newMessage(MessageType.APPEND_RESPONSE, this.id, message.from, this.term));
    } else if (type === MessageType.VOTE) {
      const reply = newMessage(MessageType.VOTE_RESPONSE, this.id, message.from, this.term);
      reply.reject = true;
      this.outbox.sendAfterPersist(reply);
    } else if (type === MessageType.PRE_VOTE) {
      const reply = newMessage(MessageType.PRE_VOTE_RESPONSE, this.id, message.from, this.term);
      reply.reject = true;
      this.outbox.send(reply);
    }
  }

  /**
   * Section 5.2 / 5.4.1: grant at most one vote per term, and only to a candidate
   * whose log is at least as up to date. A pre-vote is granted on the same log check
   * if its term is ahead of ours (it changes nothing here).
   */
  private handleVoteRequest(message: Message): void {
    const preVote = message.type === MessageType.PRE_VOTE;
    const canVote =
      this.vote === message.from || (this.vote === 0 && this.lead === 0) || (preVote && message.term > this.term);
    // A node repairing lost state grants nothing: its log and its past votes are not what it promised.
    const grant = canVote && this.recovery === undefined && this.log.isUpToDate(message.index, message.logTerm);
    if (preVote) {
      const reply = newMessage(MessageType.PRE_VOTE_RESPONSE, this.id, message.from, grant ? message.term : this.term);
      reply.reject = !grant;
      this.outbox.send(reply);
      return;
    }
    if (grant) {
      this.electionElapsed = 0;
      this.vote = message.from;
    }
    const reply = newMessage(MessageType.VOTE_RESPONSE, this.id, message.from, this.term);
    reply.reject = !grant;
    // Figure 2: the vote must be durable before the candidate hears of it.
    this.outbox.sendAfterPersist(reply);
  }

  // ---- Elections -------------------------------------------------------------------------

  /** Starts a campaign (election timeout, or `transfer` for TIMEOUT_NOW). */
  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (transfer) this.campaign("transfer");
    else this.campaign(this.config.preVote ? "pre-vote" : "election");
  }

  private campaign(kind: CampaignKind): void {
    if (kind === "pre-vote") this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = kind === "pre-vote" ? this.term + 1 : this.term;
    const type = kind === "pre-vote" ? MessageType.PRE_VOTE : MessageType.VOTE;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const peer of this.voterPeers) {
      const request = newMessage(type, this.id, peer, voteTerm);
      request.index = lastIndex;
      request.logTerm = lastTerm;
      if (kind === "transfer") request.context = TRANSFER_CONTEXT;
      // A vote request leaves once our term (and self-vote) is durable (messages.ts says why);
      // a pre-vote claims nothing and goes at once.
      if (kind === "pre-vote") this.outbox.send(request);
      else this.outbox.sendAfterPersist(request);
    }
    if (kind === "pre-vote") {
      this.poll(this.id, true);
    } else {
      // The self-vote counts once it is durable: it comes back through the gate.
      this.outbox.sendAfterPersist(newMessage(MessageType.VOTE_RESPONSE, this.id, this.id, this.term));
    }
  }

  /**
   * Records a vote and acts on the outcome. A candidate wins only with its own vote
   * among the majority, and that vote counts only once durable (it arrives through the
   * persistence gate). So a leader of term T always has T and its self-vote on disk:
   * after a crash it can neither vote for another candidate in T nor win T a second
   * time with a different log (both would break Election Safety, Figure 3).
   */
  private poll(from: number, granted: boolean): void {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const result = jointVote(this.clusterConfig, this.votes);
    if (result === "won" && this.votes.get(this.id) !== true) return;
    if (result === "won") {
      if (this.role === "pre-candidate") this.campaign("election");
      else this.becomeLeader();
    } else if (result === "lost") {
      this.becomeFollower(this.term, 0);
    }
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case MessageType.APPEND:
      case MessageType.HEARTBEAT:
      case MessageType.SNAPSHOT:
        // Section 5.2: another server established itself as leader for this term.
        this.becomeFollower(this.term, message.from);
        this.stepFollower(message);
        return;
      case MessageType.PRE_VOTE_RESPONSE:
        if (this.role === "pre-candidate") this.poll(message.from, !message.reject);
        return;
      case MessageType.VOTE_RESPONSE:
        if (this.role === "candidate") this.poll(message.from, !message.reject);
        return;
      default:
        return;
    }
  }

  // ---- Follower ----------------------------------------------------------------------------

  private stepFollower(message: Message): void {
    switch (message.type) {
      case MessageType.APPEND:
        this.heardFromLeader(message.from);
        follower.handleAppend(this, message);
        return;
      case MessageType.HEARTBEAT:
        this.heardFromLeader(message.from);
        follower.handleHeartbeat(this, message);
        return;
      case MessageType.SNAPSHOT:
        this.heardFromLeader(message.from);
        follower.handleSnapshot(this, message);
        return;
      case MessageType.TIMEOUT_NOW:
        // Thesis section 3.10: the leader asks us to campaign at once.
        this.hup(true);
        return;
      case MessageType.READ_INDEX_RESPONSE:
        this.readStates.push({ requestId: message.context, index: message.index });
        return;
      case MessageType.REPAIR_RESPONSE:
        if (this.recovery) recovery.onRepairAnswered(this.recovery, message);
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: number): void {
    this.electionElapsed = 0;
    const first = this.lead !== from;
    this.lead = from;
    if (this.recovery) recovery.onLeaderContact(this, this.recovery, from, first);
  }

  /** A voter told its term (an answer to MSG_TERM_PROBE). */
  private termProbed(message: Message): void {
    const state = this.recovery;
    if (state === undefined) return;
    const term = recovery.recordTerm(this, state, message);
    if (term === 0) return;
    // At least any term in which our lost vote counts or can still count (recovery.ts):
    // we may have voted in it, so we take it with a vote for ourselves (no one else's).
    if (term > this.term) this.becomeFollower(term, 0);
    this.vote = this.id;
    // Whole once that is durable (onPersisted): the host removes its repair mark then.
    state.termTaken = this.term;
  }

  /** Whole again: an ordinary member from now on. */
  private finishRecovery(): void {
    if (this.recovery?.whole()) this.recovery = undefined;
  }

  // ---- Leader ------------------------------------------------------------------------------

  private stepLeader(message: Message): void {
    leader.stepLeader(this, message);
  }

  /** Appends entries of the current term to the leader's log (not yet durable). */
  appendEntries(entries: Entry[]): void {
    this.log.append(entries);
    this.appendsPending = true;
  }

  /** Called by leader.ts when its quorum check fails or a higher term is seen. */
  stepDown(): void {
    this.becomeFollower(this.term, 0);
  }

  // ---- Local operations --------------------------------------------------------------------

  propose(data: Uint8Array[]): { index: number; term: number } {
    invariant(data.length > 0, "propose: no entries");
    if (this.role !== "leader") throw new NotLeaderError(this.id, this.lead, "proposal");
    if (this.leadTransferee !== 0) {
      throw new RaftwalError(RaftErrorCode.PROPOSAL_DROPPED, `leadership transfer to ${this.leadTransferee} in progress`);
    }
    let bytes = 0;
    for (let i = 0; i < data.length; i++) {
      // An empty entry is a leader no-op to the application (types.ts, step 5).
      if (data[i].length === 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "a proposal must not be empty");
      bytes += data[i].length;
    }
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.uncommittedBytesMax) {
      throw new RaftwalError(RaftErrorCode.PROPOSAL_DROPPED, `${this.uncommittedBytes} uncommitted bytes: limit ${this.config.uncommittedBytesMax}`);
    }
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) entries[i] = { term: this.term, index: first + i, type: 0, data: data[i] };
    this.appendEntries(entries);
    this.uncommittedBytes += bytes;
    return { index: first, term: this.term };
  }

  /**
   * Appends the configuration a membership change leads to (config-change.ts); it is in
   * force from this moment (thesis 4.1). Refused unless this leader has committed an
   * entry of its own term (the single-server bug found in 2015: a new leader's earlier
   * uncommitted change could otherwise overlap another's; thesis 4.1 erratum) and no other
   * change is pending: not yet committed, or a joint configuration not yet left.
   */
  proposeConfigChange(change: ConfigChange): { index: number; term: number } {
    if (this.role !== "leader") throw new NotLeaderError(this.id, this.lead, "membership change");
    if (this.leadTransferee !== 0) {
      throw new RaftwalError(RaftErrorCode.PROPOSAL_DROPPED, `leadership transfer to ${this.leadTransferee} in progress`);
    }
    const log = this.log;
    if (log.termOrMinusOne(log.committed) !== this.term) {
      throw new RaftwalError(RaftErrorCode.LEADER_NOT_READY, `leader ${this.id} has not yet committed an entry of its term ${this.term}`);
    }
    const pending = log.configs.current();
    if (pending.index > log.committed || isJoint(pending.config)) {
      throw new RaftwalError(RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS, `the configuration change at index ${pending.index} is not complete yet`);
    }
    const next = planConfigChange(this.clusterConfig, change);
    for (const id of change.promote ?? []) {
      const lag = log.lastIndex() - (this.progress.get(id)?.match ?? 0);
      if (lag > this.config.learnerLagEntriesMax) {
        throw new RaftwalError(RaftErrorCode.LEARNER_BEHIND, `learner ${id} is ${lag} entries behind the leader (at most ${this.config.learnerLagEntriesMax} to be promoted)`);
      }
    }
    const index = log.lastIndex() + 1;
    this.appendEntries([{ term: this.term, index, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(next) }]);
    return { index, term: this.term };
  }

  /** Entries handed out committed no longer count against uncommittedBytesMax. */
  reduceUncommittedBytes(entries: Entry[]): void {
    if (this.role !== "leader" || this.uncommittedBytes === 0) return;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) bytes += entrySizeBytes(entries[i]);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  readIndex(requestId: Uint8Array): void {
    if (this.role === "leader") {
      leader.registerRead(this, requestId, this.id);
      return;
    }
    if (this.role !== "follower" || this.lead === 0) throw new NotLeaderError(this.id, this.lead, "read");
    const request = newMessage(MessageType.READ_INDEX, this.id, this.lead, this.term);
    request.context = requestId;
    this.outbox.send(request);
  }

  transferLeadership(to: number): void {
    if (this.role !== "leader") throw new NotLeaderError(this.id, this.lead, "leadership transfer");
    if (!this.clusterConfig.voters.includes(to)) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `${to} is not a voter`);
    leader.startTransfer(this, to);
  }

  reportUnreachable(peer: number): void {
    const progress = this.role === "leader" && peer !== this.id ? this.progress.get(peer) : undefined;
    if (progress !== undefined && progress.state === "replicate") progress.becomeProbe();
  }

  reportSnapshot(peer: number, ok: boolean): void {
    const progress = this.role === "leader" && peer !== this.id ? this.progress.get(peer) : undefined;
    if (progress === undefined || progress.state !== "snapshot") return;
    if (!ok) progress.pendingSnapshot = 0;
    progress.becomeProbe();
    // Wait for the next heartbeat response before probing again.
    progress.probeSent = true;
  }

  snapshotTaken(meta: SnapshotMeta): void {
    if (!(meta.index <= this.log.applied)) fail(`snapshot ${meta.index} beyond the applied index ${this.log.applied}`);
    this.log.configs.compactedTo(meta.index);
    // The storage already serves it; the log's first index follows the storage. Followers
    // whose next entry was compacted get it the next time the leader sends to them.
    if (this.role === "leader") this.appendsPending = true;
  }

  /** Local bookkeeping after the host made a Ready durable (called by advance(); `durable`: the hard state on disk now). */
  onPersisted(durable: HardState): void {
    if (this.recovery) {
      recovery.checkLogRepaired(this, this.recovery);
      recovery.checkTermDurable(this.recovery, durable);
      this.finishRecovery();
    }
    if (this.role === "leader") leader.onLeaderPersisted(this);
  }

  /** Whether proposals, acknowledgements or reads made sends due that flush() would build. */
  hasSendsDue(): boolean {
    return this.role === "leader" && (this.appendsPending || this.readHeartbeatPending);
  }

  /** Sends what proposals, acknowledgements and reads have made pending (batching). */
  flush(): void {
    if (this.role === "leader") leader.flush(this);
  }
}
