/**
 * The persistence gate: the only way the core emits a message.
 *
 * Two queues make an early send structurally impossible:
 *   - `sendable`: messages that are safe to send at once (the host may take them at
 *     any time, through `takeMessages()` or `ready().messages`);
 *   - `withheld`: messages that depend on state not yet durable (see
 *     `requiresPersistence`). `ready()` moves them, together with the state changes
 *     they depend on, into the Ready being built; `advance()` of that Ready is the
 *     host's declaration that the state is durable, and only then are they released
 *     into `sendable` (or, when addressed to this node, stepped locally).
 *
 * A withheld message always depends only on state changes made before it was
 * queued, and every such change is in the next Ready (or an earlier one, already
 * advanced), so releasing on that Ready's advance() is never early.
 */
import { MessageType, type Message } from "../proto/schema.js";
import { fail, invariant } from "./invariant.js";
import { requiresPersistence } from "./messages.js";

/** Messages the core holds before the host takes them; a host that never drains it is broken. */
export const OUTBOX_MESSAGES_MAX = 1 << 20;

export class Outbox {
  private sendable: Message[] = [];
  private withheld: Message[] = [];

  /** Queues a message that does not depend on durable state. */
  send(message: Message): void {
    if (!(!requiresPersistence(message.type))) fail(`message type ${message.type} must wait for persistence`);
    invariant(this.sendable.length < OUTBOX_MESSAGES_MAX, "outbox full: the host is not taking messages");
    this.sendable.push(message);
  }

  /** Queues a message that may only leave once the state changed so far is durable. */
  sendAfterPersist(message: Message): void {
    if (!(requiresPersistence(message.type))) fail(`message type ${message.type} does not need persistence`);
    invariant(this.withheld.length < OUTBOX_MESSAGES_MAX, "outbox full: the host is not advancing");
    this.withheld.push(message);
  }

  hasSendable(): boolean {
    return this.sendable.length > 0;
  }

  hasWithheld(): boolean {
    return this.withheld.length > 0;
  }

  takeSendable(): Message[] {
    if (this.sendable.length === 0) return [];
    const messages = this.sendable;
    this.sendable = [];
    return messages;
  }

  /**
   * The term changed: the withheld acknowledgements (APPEND_RESPONSE, SNAPSHOT_RESPONSE) of
   * the old term are dropped. They claim the log as that term's leader sent it, and a newer
   * leader may have truncated those entries before they became durable: released after the
   * next Ready, they would claim entries this node never held durably. Dropping them is a
   * lost message, which Raft tolerates (the old leader is deposed or retries).
   */
  dropWithheldAcknowledgements(): void {
    if (this.withheld.length === 0) return;
    this.withheld = this.withheld.filter((m) => m.type !== MessageType.APPEND_RESPONSE && m.type !== MessageType.SNAPSHOT_RESPONSE);
  }

  /** For ready() only: the withheld messages travel (hidden) with the Ready being built. */
  takeWithheld(): Message[] {
    if (this.withheld.length === 0) return [];
    const messages = this.withheld;
    this.withheld = [];
    return messages;
  }

  /** For advance() only: the Ready these messages travelled with is durable. */
  release(messages: Message[], selfId: number, stepLocally: (message: Message) => void): void {
    for (const message of messages) {
      if (message.to === selfId) stepLocally(message);
      else this.sendable.push(message);
    }
  }
}
