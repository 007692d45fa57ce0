/**
 * The simulated network: carries core messages between nodes with random delay,
 * loss, duplication and reordering, and applies partitions.
 *
 * Requests and replies are lost separately: a reply (any *_RESPONSE message) only
 * exists once the receiver's handler ran, so dropping it is "drop the reply after
 * the handler ran". Reordering comes from random per-message delays; "long
 * reordering" holds a few messages back for a long time (MIT 6.824's
 * long-reordering network). Connectivity is checked when a message is delivered, so
 * a partition also cuts messages already in flight.
 *
 * Every message is encoded and decoded with the wire codec on its way, so a core
 * that relied on something the schema does not carry would fail here, and no two
 * nodes ever share an object.
 *
 * Nodes can be added while the network runs (a node joining the cluster); a message
 * reaches any node that exists, member or not, as the core expects (it ignores what it
 * must).
 */
import { messageCodec, MessageType, type Message } from "../../src/proto/schema.js";
import type { Rng } from "../../src/rng.js";
import { TickQueue, type VirtualClock } from "./time.js";

/** The fault mix; every probability is per message. */
export interface NetworkFaults {
  dropRequestProbability: number;
  dropReplyProbability: number;
  duplicateProbability: number;
  /** Ordinary delay, drawn uniformly from [min, max] ticks; min >= 1. */
  delayTicksMin: number;
  delayTicksMax: number;
  /** Probability that a message is held back for a long time instead. */
  longDelayProbability: number;
  longDelayTicksMax: number;
}

export const RELIABLE_NETWORK: NetworkFaults = Object.freeze({
  dropRequestProbability: 0,
  dropReplyProbability: 0,
  duplicateProbability: 0,
  delayTicksMin: 1,
  delayTicksMax: 1,
  longDelayProbability: 0,
  longDelayTicksMax: 0,
});

/** Lossy, duplicating, jittery; no long reordering. */
export const UNRELIABLE_NETWORK: NetworkFaults = Object.freeze({
  dropRequestProbability: 0.1,
  dropReplyProbability: 0.1,
  duplicateProbability: 0.05,
  delayTicksMin: 1,
  delayTicksMax: 4,
  longDelayProbability: 0,
  longDelayTicksMax: 0,
});

/** UNRELIABLE_NETWORK plus long reordering. */
export const HOSTILE_NETWORK: NetworkFaults = Object.freeze({
  ...UNRELIABLE_NETWORK,
  longDelayProbability: 0.02,
  longDelayTicksMax: 200,
});

const REPLY_TYPES: ReadonlySet<number> = new Set([
  MessageType.APPEND_RESPONSE,
  MessageType.VOTE_RESPONSE,
  MessageType.PRE_VOTE_RESPONSE,
  MessageType.HEARTBEAT_RESPONSE,
  MessageType.SNAPSHOT_RESPONSE,
  MessageType.READ_INDEX_RESPONSE,
]);

export function isReply(message: Message): boolean {
  return REPLY_TYPES.has(message.type);
}

export const MESSAGE_TYPE_NAMES: readonly string[] = Object.entries(MessageType)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/** Counts of what the cores sent (before any loss), for message-complexity checks. */
export class NetworkStats {
  sentByType: number[] = new Array(MESSAGE_TYPE_NAMES.length).fill(0);
  sentByNode = new Map<number, number>();
  /** Entries carried by APPEND messages. */
  appendEntriesSent = 0;
  /** APPEND_RESPONSE messages with reject set (conflicts found by the consistency check). */
  appendRejectionsSent = 0;
  snapshotChunksSent = 0;
  snapshotBytesSent = 0;
  delivered = 0;
  dropped = 0;
  duplicated = 0;

  sent(type?: MessageType): number {
    if (type !== undefined) return this.sentByType[type] ?? 0;
    return this.sentByType.reduce((a, b) => a + b, 0);
  }

  sentFrom(node: number): number {
    return this.sentByNode.get(node) ?? 0;
  }

  describe(): string {
    const parts = this.sentByType.flatMap((count, type) => (count > 0 ? [`${MESSAGE_TYPE_NAMES[type]}=${count}`] : []));
    return `${parts.join(" ")} entries=${this.appendEntriesSent} rejections=${this.appendRejectionsSent} dropped=${this.dropped} duplicated=${this.duplicated}`;
  }
}

interface InFlight {
  message: Message;
  sentTick: number;
}

export interface NetworkOptions {
  rng: Rng;
  clock: VirtualClock;
  nodeIds: readonly number[];
  faults?: NetworkFaults;
}

/**
 * Bound on messages in flight at once. A correct core with flow control stays far
 * below it; reaching it means a message storm (for example a reject/resend loop
 * amplified by duplication), reported as a failure rather than left to run for hours.
 */
export const IN_FLIGHT_MESSAGES_MAX = 20_000;

export class Network {
  private readonly ids: number[];
  stats = new NetworkStats();
  private faults: NetworkFaults;
  private readonly rng: Rng;
  private readonly clock: VirtualClock;
  private readonly queue = new TickQueue<InFlight>();
  /** Node id -> partition group. Nodes in different groups cannot talk. */
  private groupOf = new Map<number, number>();
  private groupNext = 1;
  /** Called for a message lost because its endpoints were not connected (the sender's transport notices). */
  onUnreachable: ((message: Message) => void) | undefined;
  /** A scenario's hand on the wire: returning false drops the message as it is sent (a test may keep a copy and send it later). */
  intercept: ((message: Message) => boolean) | undefined;

  constructor(options: NetworkOptions) {
    this.rng = options.rng;
    this.clock = options.clock;
    this.ids = [...options.nodeIds];
    this.faults = options.faults ?? RELIABLE_NETWORK;
    this.heal();
  }

  /** Every node that exists, in the order they were added. */
  get nodeIds(): readonly number[] {
    return this.ids;
  }

  /** A new node, in the same partition group as `near` (alone when `near` is not given). */
  addNode(id: number, near?: number): void {
    if (this.ids.includes(id)) throw new Error(`node ${id} already on the network`);
    this.ids.push(id);
    this.groupOf.set(id, near !== undefined ? this.groupOf.get(near)! : this.groupNext++);
  }

  setFaults(faults: NetworkFaults): void {
    if (faults.delayTicksMin < 1 || faults.delayTicksMax < faults.delayTicksMin) throw new Error("bad delay range");
    this.faults = faults;
  }

  currentFaults(): NetworkFaults {
    return this.faults;
  }

  /** Splits the nodes into groups; a node not listed is alone. */
  partition(groups: readonly (readonly number[])[]): void {
    this.groupOf.clear();
    for (const group of groups) {
      const g = this.groupNext++;
      for (const id of group) {
        if (this.groupOf.has(id)) throw new Error(`node ${id} in two partition groups`);
        this.groupOf.set(id, g);
      }
    }
    for (const id of this.nodeIds) if (!this.groupOf.has(id)) this.groupOf.set(id, this.groupNext++);
  }

  /** Cuts one node off from every other, leaving the rest of the topology as it is. */
  isolate(id: number): void {
    this.groupOf.set(id, this.groupNext++);
  }

  /** Moves `id` into the group of `peer`. */
  join(id: number, peer: number): void {
    this.groupOf.set(id, this.groupOf.get(peer)!);
  }

  heal(): void {
    this.partition([this.nodeIds]);
  }

  connected(a: number, b: number): boolean {
    return this.groupOf.get(a) === this.groupOf.get(b);
  }

  /** The current groups, as sorted id lists (for logs). */
  groups(): number[][] {
    const byGroup = new Map<number, number[]>();
    for (const id of this.nodeIds) {
      const g = this.groupOf.get(id)!;
      if (!byGroup.has(g)) byGroup.set(g, []);
      byGroup.get(g)!.push(id);
    }
    return [...byGroup.values()];
  }

  send(message: Message): void {
    const stats = this.stats;
    stats.sentByType[message.type] = (stats.sentByType[message.type] ?? 0) + 1;
    stats.sentByNode.set(message.from, (stats.sentByNode.get(message.from) ?? 0) + 1);
    if (message.type === MessageType.APPEND) stats.appendEntriesSent += message.entries.length;
    if (message.type === MessageType.APPEND_RESPONSE && message.reject) stats.appendRejectionsSent += 1;
    if (message.snapshot) {
      stats.snapshotChunksSent += 1;
      stats.snapshotBytesSent += message.snapshot.data.length;
    }
    if (message.to === message.from) throw new Error(`node ${message.from} sent a message to itself`);
    if (!this.ids.includes(message.to)) throw new Error(`message to unknown node ${message.to}`);

    if (this.intercept !== undefined && !this.intercept(message)) {
      stats.dropped += 1;
      return;
    }
    const faults = this.faults;
    const dropProbability = isReply(message) ? faults.dropReplyProbability : faults.dropRequestProbability;
    if (this.rng.chance(dropProbability)) {
      stats.dropped += 1;
      return;
    }
    const wire = messageCodec.encode(message);
    let copies = 1;
    if (this.rng.chance(faults.duplicateProbability)) {
      copies = 2;
      stats.duplicated += 1;
    }
    if (this.queue.size + copies > IN_FLIGHT_MESSAGES_MAX) {
      throw new Error(`network: more than ${IN_FLIGHT_MESSAGES_MAX} messages in flight (message storm; last sent: ${MESSAGE_TYPE_NAMES[message.type]} ${message.from}->${message.to})`);
    }
    for (let c = 0; c < copies; c++) {
      const delay = this.rng.chance(faults.longDelayProbability)
        ? this.rng.between(faults.delayTicksMax, Math.max(faults.delayTicksMax, faults.longDelayTicksMax))
        : this.rng.between(faults.delayTicksMin, faults.delayTicksMax);
      this.queue.push(this.clock.now() + delay, { message: messageCodec.decode(wire), sentTick: this.clock.now() });
    }
  }

  /** Messages due now whose endpoints are connected; the rest of the due ones are lost. */
  deliverDue(): Message[] {
    const out: Message[] = [];
    for (const inFlight of this.queue.popDue(this.clock.now())) {
      const m = inFlight.message;
      if (!this.connected(m.from, m.to)) {
        this.stats.dropped += 1;
        this.onUnreachable?.(m);
        continue;
      }
      this.stats.delivered += 1;
      out.push(m);
    }
    return out;
  }

  inFlightCount(): number {
    return this.queue.size;
  }

  /** Drops every message in flight (for example to start a phase from a quiet network). */
  dropAllInFlight(): void {
    this.stats.dropped += this.queue.removeWhere(() => true);
  }

  resetStats(): void {
    this.stats = new NetworkStats();
  }
}
