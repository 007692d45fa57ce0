/**
 * The follower's side: AppendEntries and heartbeats (Figure 2, section 5.3) and the
 * chunked InstallSnapshot receiver (section 7, Figure 13). Every acknowledgement goes
 * through the persistence gate (`sendAfterPersist`): it leaves only once the entries
 * or chunks it acknowledges are durable.
 *
 * Functions of the Raft instance, kept apart so each handler stays short.
 */
import { MessageType, type Message, type SnapshotMeta } from "../proto/schema.js";
import { EMPTY_BYTES, newMessage } from "./messages.js";
import type { Raft } from "./raft.js";

function replyToAppend(raft: Raft, message: Message): Message {
  return newMessage(MessageType.APPEND_RESPONSE, raft.id, message.from, raft.term);
}

/** AppendEntries receiver (Figure 2, section 5.3), with the conflict hint of section 5.3. */
export function handleAppend(raft: Raft, message: Message): void {
  const log = raft.log;
  const reply = replyToAppend(raft, message);
  if (message.index < log.committed) {
    // Everything up to the commit index matches the leader already.
    reply.index = log.committed;
  } else {
    const lastNew = log.maybeAppend(message.index, message.logTerm, message.commit, message.entries);
    if (lastNew >= 0) {
      reply.index = lastNew;
    } else {
      // Fast backup: point the leader at our last entry whose term is <= the term it
      // probed with, so it skips a whole term per round trip.
      const hint = log.findConflictByTerm(Math.min(message.index, log.lastIndex()), message.logTerm);
      reply.index = message.index;
      reply.reject = true;
      reply.rejectHint = hint.index;
      reply.rejectTerm = hint.term;
    }
  }
  raft.outbox.sendAfterPersist(reply);
}

export function handleHeartbeat(raft: Raft, message: Message): void {
  // The leader sends min(match, commit): our log matches up to there. A node repairing a
  // lost log may still be credited by the leader with entries it lost: never beyond its log.
  raft.log.commitTo(raft.recovery ? Math.min(message.commit, raft.log.lastIndex()) : message.commit);
  const reply = newMessage(MessageType.HEARTBEAT_RESPONSE, raft.id, message.from, raft.term);
  reply.context = message.context;
  raft.outbox.send(reply);
}

/** InstallSnapshot receiver (section 7, Figure 13), one chunk at a time. */
export function handleSnapshot(raft: Raft, message: Message): void {
  const chunk = message.snapshot;
  if (chunk === undefined) return;
  if (chunk.meta.index <= raft.log.committed) {
    // We have all of it already: tell the leader where we are.
    const reply = replyToAppend(raft, message);
    reply.index = raft.log.committed;
    raft.outbox.sendAfterPersist(reply);
    return;
  }
  if (raft.log.unstable.hasSnapshotToPersist()) {
    // A fully received snapshot waits for the next Ready. Chunks of another transfer
    // must not share that Ready (the host installs after writing all its chunks),
    // so this one is dropped; the leader resends it after an election timeout.
    return;
  }
  const outcome = raft.snapshotReceiver.receive(chunk, message.from, raft.term);
  const reply = newMessage(MessageType.SNAPSHOT_RESPONSE, raft.id, message.from, raft.term);
  reply.snapshot = { meta: chunk.meta, offset: 0, data: EMPTY_BYTES, done: false };
  if (outcome.kind === "rejected") {
    reply.reject = true;
    reply.index = outcome.expectedOffset;
  } else {
    reply.index = outcome.nextOffset;
    if (outcome.kind === "accepted" && outcome.done && !installSnapshot(raft, chunk.meta)) {
      const ack = replyToAppend(raft, message);
      ack.index = raft.log.committed;
      raft.outbox.sendAfterPersist(ack);
      return;
    }
    reply.snapshot.done = outcome.kind === "accepted" && outcome.done;
  }
  reply.snapshot.offset = reply.index;
  raft.outbox.sendAfterPersist(reply);
}

/**
 * The last chunk arrived: install (Figure 13 steps 6-8). Returns false when the log
 * already holds the snapshot's last entry in an entry not yet durable: then the
 * snapshot only proves those entries committed, and is not installed.
 */
function installSnapshot(raft: Raft, meta: SnapshotMeta): boolean {
  const log = raft.log;
  const unstable = log.unstable;
  const matches = log.matchTerm(meta.index, meta.term);
  const durable =
    (unstable.entries.length === 0 || meta.index < unstable.offset) &&
    (unstable.snapshot === undefined || unstable.snapshotKeepsStorage);
  if (matches && !durable) {
    log.commitTo(meta.index);
    return false;
  }
  // Step 6: keep the entries following a matching entry; step 7: else discard the log.
  log.restore(meta, matches);
  return true;
}
