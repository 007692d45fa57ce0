/**
 * The leader's side: replication (section 5.3), commitment (section 5.4.2), heartbeats
 * and CheckQuorum (thesis section 6.2), snapshot sending in chunks (section 7),
 * ReadIndex (thesis section 6.4) and leadership transfer (thesis section 3.10).
 *
 * Functions of the Raft instance, kept apart so each handler stays short.
 */
import { EntryType, MessageType, type Message } from "../proto/schema.js";
import { isJoint, isVoter } from "./cluster-config.js";
import { leaveJointConfig } from "./config-change.js";
import { encodeConfigEntry } from "./config-log.js";
import { RaftErrorCode, RaftwalError } from "./errors.js";
import { SNAPSHOT_CHUNKS_IN_FLIGHT_MAX } from "./config.js";
import { entrySizeBytes } from "./entry-size.js";
import { fail } from "./invariant.js";
import { EMPTY_BYTES, newMessage } from "./messages.js";
import { Progress } from "./progress.js";
import { jointIndex, jointQuorum } from "./quorum.js";
import type { Raft } from "./raft.js";
import { decodeSequence, encodeSequence, type PendingRead } from "./read-only.js";
import { acknowledgeHeartbeat, leaseValid, stampHeartbeat, unstamped } from "./lease.js";
import { serveRepair } from "./recovery.js";
import { sameSnapshot } from "./snapshot-receiver.js";

export function stepLeader(raft: Raft, message: Message): void {
  const progress = raft.progress.get(message.from);
  if (progress === undefined) return;
  // Any message of our term from a follower shows it is reachable (CheckQuorum).
  progress.recentActive = true;
  switch (message.type) {
    case MessageType.APPEND_RESPONSE:
      if (message.reject) handleAppendRejection(raft, progress, message);
      else handleAppendAck(raft, progress, message.from, message.index);
      return;
    case MessageType.HEARTBEAT_RESPONSE:
      handleHeartbeatResponse(raft, progress, message);
      return;
    case MessageType.SNAPSHOT_RESPONSE:
      handleSnapshotResponse(raft, progress, message);
      return;
    case MessageType.READ_INDEX:
      registerRead(raft, message.context, message.from);
      return;
    case MessageType.REPAIR:
      serveRepair(raft, message);
      return;
    default:
      return;
  }
}

// ---- Ticks ------------------------------------------------------------------------------

export function tickLeader(raft: Raft): void {
  if (raft.lease) raft.lease.now += 1;
  raft.heartbeatElapsed += 1;
  raft.electionElapsed += 1;
  if (raft.electionElapsed >= raft.config.electionTimeoutTicks) {
    raft.electionElapsed = 0;
    // Thesis section 6.2: a leader that has not heard from a majority within an
    // election timeout steps down.
    if (raft.config.checkQuorum && !quorumActive(raft)) {
      raft.stepDown();
      return;
    }
    // Thesis section 3.10: abandon a transfer that did not finish in an election timeout.
    raft.leadTransferee = 0;
  }
  tickSnapshotTransfers(raft);
  if (raft.heartbeatElapsed >= raft.config.heartbeatIntervalTicks) {
    raft.heartbeatElapsed = 0;
    broadcastHeartbeat(raft);
  }
}

/** Whether the voters heard from since the last check (this node included) are a quorum; clears the marks. */
function quorumActive(raft: Raft): boolean {
  const active = jointQuorum(raft.clusterConfig, (id) => id === raft.id || raft.progress.get(id)?.recentActive === true);
  for (const progress of raft.peerProgress) progress.recentActive = false;
  return active;
}

/** A heartbeat to every peer (the periodic one), carrying the newest pending read's sequence. */
function broadcastHeartbeat(raft: Raft): void {
  const context = heartbeatContext(raft);
  const peers = raft.peers;
  for (let i = 0; i < peers.length; i++) sendHeartbeat(raft, peers[i], raft.peerProgress[i], context);
}

/**
 * A round for the reads pending: to a quorum only once the voters' echoes tell which
 * answer quickest (ReadOnly.roundTargets says why), else to every peer. A round to every
 * peer counts as the periodic heartbeat; one to a quorum does not: every follower must keep
 * hearing from the leader within its election timeout, or it starts an election (section
 * 5.2, heartbeats maintain the leader's authority).
 */
function sendReadRound(raft: Raft): void {
  const targets = raft.readOnly?.roundTargets(raft.clusterConfig, raft.peers);
  if (targets === undefined) {
    raft.heartbeatElapsed = 0;
    broadcastHeartbeat(raft);
    return;
  }
  const context = heartbeatContext(raft);
  for (const id of targets) sendHeartbeat(raft, id, raft.progress.get(id)!, context);
}

/** The heartbeats' context: the newest pending read's sequence (its round is now sent), lease-stamped in lease mode. */
function heartbeatContext(raft: Raft): Uint8Array {
  const sequence = raft.readOnly === undefined ? 0 : raft.readOnly.newestSequence();
  if (sequence > 0) raft.readOnly!.roundSent(sequence);
  const sequenceContext = sequence === 0 ? EMPTY_BYTES : encodeSequence(sequence);
  return raft.lease ? stampHeartbeat(sequenceContext, raft.lease) : sequenceContext;
}

function sendHeartbeat(raft: Raft, to: number, progress: Progress, context: Uint8Array): void {
  const heartbeat = newMessage(MessageType.HEARTBEAT, raft.id, to, raft.term);
  // The follower may not hold our entries beyond its match index: commit no further.
  heartbeat.commit = Math.min(progress.match, raft.log.committed);
  heartbeat.context = context;
  if (heartbeat.commit > progress.sentCommit) progress.sentCommit = heartbeat.commit;
  raft.outbox.send(heartbeat);
}

// ---- Sending appends ----------------------------------------------------------------------

/** Sends what became pending since the last call: new entries, the commit index, a read round. */
export function flush(raft: Raft): void {
  if (raft.appendsPending) {
    raft.appendsPending = false;
    const peers = raft.peers;
    for (let i = 0; i < peers.length; i++) sendAppends(raft, peers[i], raft.peerProgress[i]);
  }
  if (raft.readHeartbeatPending) {
    raft.readHeartbeatPending = false;
    sendReadRound(raft);
  }
}

/**
 * Sends appends to one follower while flow control allows and there is something to
 * send. With `probeIfEmpty`, an empty append goes out even without new entries when
 * the follower has not confirmed everything sent (its answer tells where it stands).
 */
function sendAppends(raft: Raft, to: number, progress: Progress, probeIfEmpty = false): void {
  // Bounded by the in-flight window (one message when probing).
  for (let sent = 0; sent <= raft.config.inflightMessagesMax; sent++) {
    if (progress.isPaused() || !sendAppend(raft, to, progress, probeIfEmpty && sent === 0)) return;
  }
}

/**
 * Sends one append (or starts a snapshot transfer when the entries it needs are
 * compacted); returns false when there was nothing worth sending.
 */
function sendAppend(raft: Raft, to: number, progress: Progress, probeIfEmpty: boolean): boolean {
  const log = raft.log;
  const lastIndex = log.lastIndex();
  const prevIndex = progress.next - 1;
  if (!(prevIndex <= lastIndex)) fail(`next index ${progress.next} beyond the last index ${lastIndex}`);
  const prevTerm = log.termOrMinusOne(prevIndex);
  if (prevTerm < 0) return startSnapshot(raft, to, progress);
  const hasEntries = progress.next <= lastIndex;
  // A commit index alone does not justify a message: the next append or heartbeat
  // carries it (this keeps agreement at one append and one response per entry batch).
  const unconfirmed = (progress.state === "probe" || probeIfEmpty) && progress.match < prevIndex;
  if (!hasEntries && !unconfirmed) return false;
  const entries = hasEntries ? log.slice(progress.next, lastIndex + 1, raft.config.messageBytesMax) : [];
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) bytes += entrySizeBytes(entries[i]);
  const append = newMessage(MessageType.APPEND, raft.id, to, raft.term);
  append.index = prevIndex;
  append.logTerm = prevTerm;
  append.entries = entries;
  append.commit = log.committed;
  const lastSent = prevIndex + entries.length;
  progress.sentEntries(entries.length, lastSent, bytes);
  const commitSent = Math.min(log.committed, lastSent);
  if (commitSent > progress.sentCommit) progress.sentCommit = commitSent;
  raft.outbox.send(append);
  return true;
}

function handleAppendRejection(raft: Raft, progress: Progress, message: Message): void {
  // Fast backup (section 5.3): skip the follower's whole conflicting term.
  let hint = message.rejectHint;
  if (message.rejectTerm > 0) hint = raft.log.findConflictByTerm(message.rejectHint, message.rejectTerm).index;
  if (!progress.maybeDecreaseTo(message.index, hint)) return;
  if (progress.state === "replicate") progress.becomeProbe();
  sendAppends(raft, message.from, progress);
}

function handleAppendAck(raft: Raft, progress: Progress, from: number, index: number): void {
  const updated = progress.maybeUpdate(index);
  // Catching up after a snapshot, the follower answers entries now: the hold goes on (sendingSnapshot).
  if (updated && progress.match < progress.catchUpToIndex) progress.ticksSinceSnapshotAnswer = 0;
  if (!updated && !(progress.state === "probe" && progress.match === index)) return;
  if (progress.state === "probe") {
    progress.becomeReplicate();
  } else if (progress.state === "snapshot") {
    // Leave the snapshot state once the log can serve the follower again.
    if (progress.match + 1 >= raft.log.firstIndex()) {
      progress.becomeProbe();
      progress.becomeReplicate();
    }
  } else {
    progress.inflights.freeLE(index);
  }
  maybeCommit(raft);
  // New entries, the new commit index or the next window go out at the next flush (batching).
  raft.appendsPending = true;
  if (from === raft.leadTransferee && progress.match === raft.log.lastIndex()) sendTimeoutNow(raft, from);
}

function handleHeartbeatResponse(raft: Raft, progress: Progress, message: Message): void {
  progress.probeSent = false;
  // A follower that answers heartbeats but not appends lost them: reopen one slot of
  // the window and probe with an (empty) append, whose answer repairs `next`.
  if (progress.state === "replicate" && progress.inflights.full()) progress.inflights.freeFirstOne();
  if (progress.state !== "snapshot" && progress.match < raft.log.lastIndex()) sendAppends(raft, message.from, progress, true);
  if (raft.lease) acknowledgeHeartbeat(raft.lease, message.from, message.context);
  const sequence = decodeSequence(unstamped(message.context, raft.lease));
  if (sequence > 0 && raft.readOnly !== undefined) {
    answerReads(raft, raft.readOnly.acknowledge(message.from, sequence, raft.clusterConfig));
    // The reads that arrived while that round was in flight go out in the next one.
    if (raft.readOnly.needsRound()) raft.readHeartbeatPending = true;
  }
}

// ---- Commitment -------------------------------------------------------------------------------

const sortScratch: number[] = [];

/**
 * Section 5.4.2 (Figure 8): the leader commits an index replicated on a majority only
 * if that entry is of its current term; earlier entries then commit indirectly. The
 * majority is of the configuration in force, of both halves while joint (thesis 4.3).
 * The leader counts itself only for entries it has persisted, and only while it is a
 * voter (thesis 4.2.2: a leader removing itself "does not count itself in majorities").
 * Returns whether the commit index advanced.
 */
export function maybeCommit(raft: Raft): boolean {
  const index = jointIndex(raft.clusterConfig, raft.matchOf, sortScratch);
  const log = raft.log;
  if (index <= log.committed || log.termOrMinusOne(index) !== raft.term) return false;
  const firstOfTerm = log.termOrMinusOne(log.committed) !== raft.term;
  log.commitTo(index);
  if (firstOfTerm && raft.readOnly !== undefined) releaseWaitingReads(raft);
  afterConfigCommitted(raft);
  return true;
}

// ---- Membership (thesis chapter 4) ----------------------------------------------------------

/**
 * Progress for every member of the configuration in force (voters and learners alike
 * receive the log) and for nobody else; called when the leader takes office and whenever
 * the configuration changes. A new member starts in probe state at the end of the log
 * and counts as recently active, so CheckQuorum gives it an election timeout to answer.
 */
export function trackMembers(raft: Raft): void {
  const next = raft.log.lastIndex() + 1;
  for (const id of raft.peers) {
    if (raft.progress.has(id)) continue;
    const progress = new Progress(next, raft.config.inflightMessagesMax, raft.config.inflightBytesMax);
    progress.recentActive = true;
    raft.progress.set(id, progress);
    raft.appendsPending = true;
  }
  for (const id of raft.progress.keys()) {
    if (id !== raft.id && !raft.peers.includes(id)) raft.progress.delete(id);
  }
  raft.peerProgress = raft.peers.map((id) => raft.progress.get(id)!);
  if (raft.leadTransferee !== 0 && !raft.clusterConfig.voters.includes(raft.leadTransferee)) raft.leadTransferee = 0;
}

/**
 * The rules that wait for a configuration to commit:
 *   - a committed joint configuration C_old,new is left by appending C_new (thesis 4.3,
 *     "once C_old,new has been committed ... the leader can create a log entry describing
 *     C_new"); a new leader that inherits a joint configuration does the same once its
 *     first entry commits, which commits the joint entry with it;
 *   - a leader that is not a voter of a committed configuration steps down (thesis 4.2.2),
 *     first telling the most caught-up voter to campaign at once, so the cluster does not
 *     wait an election timeout.
 */
function afterConfigCommitted(raft: Raft): void {
  const { index, config } = raft.log.configs.current();
  if (index > raft.log.committed) return;
  if (isJoint(config)) {
    const leave = leaveJointConfig(config);
    raft.appendEntries([{ term: raft.term, index: raft.log.lastIndex() + 1, type: EntryType.CLUSTER_CONFIG, data: encodeConfigEntry(leave) }]);
    return;
  }
  if (isVoter(config, raft.id)) return;
  const successor = mostCaughtUpVoter(raft);
  if (successor !== 0) sendTimeoutNow(raft, successor);
  raft.stepDown();
}

/** The voter with the whole log (the one a transfer can hand over to at once), or 0. */
function mostCaughtUpVoter(raft: Raft): number {
  const last = raft.log.lastIndex();
  for (const id of raft.clusterConfig.voters) {
    if (id !== raft.id && raft.progress.get(id)?.match === last) return id;
  }
  return 0;
}

/** After advance(): the leader's own entries up to the persisted index count toward commitment. */
export function onLeaderPersisted(raft: Raft): void {
  const self = raft.progress.get(raft.id)!;
  if (self.maybeUpdate(raft.log.persistedLastIndex()) && maybeCommit(raft)) raft.appendsPending = true;
}

// ---- Snapshots (section 7) ----------------------------------------------------------------------

function startSnapshot(raft: Raft, to: number, progress: Progress): boolean {
  // Like etcd: do not start a (large) transfer to a follower we have not heard from lately.
  if (!progress.recentActive) return false;
  const meta = raft.log.storage.snapshotMeta();
  if (!(meta.index > 0)) fail(`entry ${progress.next - 1} is compacted but the storage has no snapshot`);
  progress.becomeSnapshot(meta);
  sendSnapshotChunks(raft, to, progress);
  return true;
}

/** Sends chunks from the transfer's sent offset while the window allows. */
function sendSnapshotChunks(raft: Raft, to: number, progress: Progress): void {
  let transfer = progress.snapshotTransfer!;
  const storage = raft.log.storage;
  const current = storage.snapshotMeta();
  if (!sameSnapshot(current, transfer.meta)) {
    // A newer snapshot replaced the one being sent, and the storage serves only the
    // newest: start over with it (see RaftLogStorage.readSnapshotChunk).
    progress.becomeSnapshot(current);
    transfer = progress.snapshotTransfer!;
  }
  const meta = transfer.meta;
  const chunkBytes = raft.config.snapshotChunkBytes;
  if (!(transfer.offset <= transfer.sentOffset && transfer.sentOffset <= meta.sizeBytes)) {
    fail(`snapshot transfer offsets out of order: ${transfer.offset} <= ${transfer.sentOffset} <= ${meta.sizeBytes}`);
  }
  // Bounded by the window.
  for (let sent = 0; sent < SNAPSHOT_CHUNKS_IN_FLIGHT_MAX; sent++) {
    if (transfer.doneSent || transfer.sentOffset - transfer.offset >= SNAPSHOT_CHUNKS_IN_FLIGHT_MAX * chunkBytes) return;
    const offset = transfer.sentOffset;
    const data = meta.sizeBytes === 0 ? EMPTY_BYTES : storage.readSnapshotChunk(offset, chunkBytes);
    if (data.length === 0 && offset < meta.sizeBytes) {
      throw new RaftwalError(RaftErrorCode.LOG_UNAVAILABLE, `snapshot ${meta.index} payload ends at ${offset} of ${meta.sizeBytes}`);
    }
    const done = offset + data.length >= meta.sizeBytes;
    const message = newMessage(MessageType.SNAPSHOT, raft.id, to, raft.term);
    message.snapshot = { meta, offset, data, done };
    transfer.sentOffset = offset + data.length;
    transfer.doneSent = done;
    raft.outbox.send(message);
  }
}

/** Resends the window from the follower's last reported offset. */
function resendSnapshotWindow(raft: Raft, to: number, progress: Progress, offset: number): void {
  const transfer = progress.snapshotTransfer!;
  transfer.offset = Math.max(0, Math.min(offset, transfer.meta.sizeBytes));
  transfer.sentOffset = transfer.offset;
  transfer.doneSent = false;
  transfer.idleTicks = 0;
  sendSnapshotChunks(raft, to, progress);
}

function handleSnapshotResponse(raft: Raft, progress: Progress, message: Message): void {
  const transfer = progress.snapshotTransfer;
  const chunk = message.snapshot;
  if (progress.state !== "snapshot" || transfer === undefined || chunk === undefined || !sameSnapshot(chunk.meta, transfer.meta)) return;
  progress.ticksSinceSnapshotAnswer = 0;
  if (chunk.done && !message.reject) {
    // Installed: the follower's log now ends at (or, keeping later entries, beyond) the snapshot.
    progress.maybeUpdate(transfer.meta.index);
    progress.catchUpToIndex = raft.log.lastIndex();
    progress.becomeProbe();
    raft.appendsPending = true;
    return;
  }
  if (message.reject) {
    // The follower expects another offset (a chunk was lost, or it restarted): resume there.
    resendSnapshotWindow(raft, message.from, progress, message.index);
    return;
  }
  if (message.index <= transfer.offset) return; // stale or duplicate
  // The follower may hold more than the window sent since it was last moved back (its
  // acknowledgements were lost, then a late rejection or a restarted transfer resent an
  // earlier window): it acknowledges only durable chunks, so resume from its offset.
  transfer.offset = Math.min(message.index, transfer.meta.sizeBytes);
  transfer.sentOffset = Math.max(transfer.sentOffset, transfer.offset);
  transfer.idleTicks = 0;
  sendSnapshotChunks(raft, message.from, progress);
}

/**
 * Whether this leader is catching a follower up by snapshot: the follower needs entries
 * already compacted (or a transfer to it is under way), or it installed the snapshot and has
 * not yet acknowledged the entries the leader had then (compacting them would need another
 * snapshot); and it answered the transfer or those entries, or a transfer to it started,
 * within the last two election timeouts (so a follower that went away stops counting; a
 * transfer that starts over does not).
 */
export function sendingSnapshot(raft: Raft): boolean {
  if (raft.role !== "leader") return false;
  const firstIndex = raft.log.firstIndex();
  for (const progress of raft.peerProgress) {
    const needsSnapshot = progress.state === "snapshot" || progress.next < firstIndex;
    const catchingUp = progress.match < progress.catchUpToIndex;
    if ((needsSnapshot || catchingUp) && progress.ticksSinceSnapshotAnswer < 2 * raft.config.electionTimeoutTicks) return true;
  }
  return false;
}

/**
 * Per leader tick: ages every follower's last snapshot answer (sendingSnapshot), and resends
 * the window of chunks unacknowledged for an election timeout (probably lost).
 */
function tickSnapshotTransfers(raft: Raft): void {
  const peers = raft.peers;
  for (let i = 0; i < peers.length; i++) {
    const progress = raft.peerProgress[i];
    progress.ticksSinceSnapshotAnswer += 1;
    const transfer = progress.snapshotTransfer;
    if (transfer === undefined || (transfer.sentOffset === transfer.offset && !transfer.doneSent)) continue;
    transfer.idleTicks += 1;
    if (transfer.idleTicks >= raft.config.electionTimeoutTicks) resendSnapshotWindow(raft, peers[i], progress, transfer.offset);
  }
}

// ---- ReadIndex (thesis section 6.4) -----------------------------------------------------------

/** Registers a read from this node or a follower; dropped (or thrown, locally) when the queue is full. */
export function registerRead(raft: Raft, requestId: Uint8Array, from: number): void {
  const readOnly = raft.readOnly!;
  if (readOnly.isFull()) {
    if (from === raft.id) throw new RaftwalError(RaftErrorCode.PROPOSAL_DROPPED, "too many pending reads");
    return;
  }
  // Until the leader has committed an entry of its term it does not know the commit index.
  if (raft.log.termOrMinusOne(raft.log.committed) !== raft.term) {
    readOnly.wait(requestId, from);
    return;
  }
  if (raft.lease && leaseValid(raft, raft.lease)) {
    // Thesis 6.4.1: within the lease no other leader can exist; the commit index is current.
    answerReads(raft, [{ requestId, from, index: raft.log.committed, sequence: 0 }]);
    return;
  }
  readOnly.add(requestId, from, raft.log.committed);
  // Confirmed at once when this node alone is a quorum; otherwise by a heartbeat round (the
  // next one, when a round is in flight: ReadOnly.needsRound).
  answerReads(raft, readOnly.release(raft.clusterConfig));
  if (readOnly.needsRound()) raft.readHeartbeatPending = true;
}

function releaseWaitingReads(raft: Raft): void {
  for (const read of raft.readOnly!.takeWaiting()) registerRead(raft, read.requestId, read.from);
}

function answerReads(raft: Raft, reads: PendingRead[]): void {
  for (const read of reads) {
    if (read.from === raft.id) {
      raft.readStates.push({ requestId: read.requestId, index: read.index });
      continue;
    }
    const response = newMessage(MessageType.READ_INDEX_RESPONSE, raft.id, read.from, raft.term);
    response.index = read.index;
    response.context = read.requestId;
    raft.outbox.send(response);
  }
}

// ---- Leadership transfer (thesis section 3.10) --------------------------------------------------

export function startTransfer(raft: Raft, to: number): void {
  if (to === raft.id) {
    raft.leadTransferee = 0;
    return;
  }
  if (raft.leadTransferee === to) return;
  raft.leadTransferee = to;
  // Abandon it if it does not complete within an election timeout.
  raft.electionElapsed = 0;
  const progress = raft.progress.get(to)!;
  if (progress.match === raft.log.lastIndex()) sendTimeoutNow(raft, to);
  else raft.appendsPending = true;
}

function sendTimeoutNow(raft: Raft, to: number): void {
  // The transferee campaigns at once, lease or not: no lease read from here on (lease.ts).
  if (raft.lease) raft.lease.revoked = true;
  raft.outbox.send(newMessage(MessageType.TIMEOUT_NOW, raft.id, to, raft.term));
}
