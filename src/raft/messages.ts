/**
 * Building messages, and the rule that decides which of them depend on durable state.
 */
import { MessageType, newMessage } from "../proto/schema.js";

export { newMessage };

export const EMPTY_BYTES = new Uint8Array(0);

/** Context of a vote request sent because the leader asked us to take over (thesis section 3.10). */
export const TRANSFER_CONTEXT = new TextEncoder().encode("raftwal:transfer");

export function isTransferContext(context: Uint8Array): boolean {
  if (context.length !== TRANSFER_CONTEXT.length) return false;
  for (let i = 0; i < context.length; i++) if (context[i] !== TRANSFER_CONTEXT[i]) return false;
  return true;
}

/**
 * Messages that claim something about this node's durable state, and so may only be
 * sent once that state is durable (Figure 2: "Updated on stable storage before
 * responding to RPCs"):
 *   - APPEND_RESPONSE acknowledges entries (and the term they were accepted in);
 *   - VOTE_RESPONSE grants a vote (rejections are routed the same way, for simplicity),
 *     including a candidate's vote for itself, which it counts only once durable;
 *   - SNAPSHOT_RESPONSE acknowledges snapshot chunks or an installed snapshot;
 *   - VOTE asks for votes in the candidate's term, which must be durable on the candidate
 *     first. Without storage damage an early request would be harmless (a voter's vote is
 *     durable, and the candidate counts votes only once its own is). With it, it is not: a
 *     candidate that crashed before its term T was durable restarts below T, campaigns in T
 *     again and counts a delayed grant from its first campaign, while the granting voter,
 *     having lost its hard state, asked every voter's term (REPAIR.md rule 5), heard
 *     nothing of T and voted in T again (simulation seed 1803772105: two votes in one term).
 *     With T durable first, any vote in T for a candidate implies the candidate answers
 *     those questions with T or later. etcd raft, too, sends a Ready's messages only after
 *     its HardState is durable.
 * PRE_VOTE and PRE_VOTE_RESPONSE change no state.
 */
export function requiresPersistence(type: MessageType): boolean {
  return type === MessageType.APPEND_RESPONSE || type === MessageType.VOTE_RESPONSE || type === MessageType.SNAPSHOT_RESPONSE || type === MessageType.VOTE;
}
