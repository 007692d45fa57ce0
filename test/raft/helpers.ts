/**
 * A tiny deterministic harness for the paper-rule tests: cores over MemoryStorage,
 * hand-wired by a message pump that delivers in FIFO order, with optional drop
 * filters. The full cluster simulator (faults, crashes, checkers) lives in test/sim/.
 */
import { newMessage } from "../../src/raft/messages.js";
import { EntryType, MessageType, type Entry, type Message } from "../../src/proto/schema.js";
import { createRaft, MemoryStorage } from "../../src/raft/index.js";
import type { RaftConfig, RaftCore, ReadState, Ready } from "../../src/raft/types.js";

export { MessageType };

/** The project's seeded PRNG (src/rng.ts): deterministic randomness for election timeouts. */
export { seededRandom } from "../../src/rng.js";
import { seededRandom } from "../../src/rng.js";

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

export function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: 0, data: bytes(data) };
}

/** A storage pre-filled with entries of the given terms at indexes 1.. (a "Figure 7" log). */
export function storageWithTerms(terms: number[], hardTerm = Math.max(0, ...terms)): MemoryStorage {
  const storage = new MemoryStorage();
  storage.append(terms.map((term, i) => entry(i + 1, term, `e${i + 1}`)));
  storage.setHardState({ term: hardTerm, vote: 0, commit: 0 });
  return storage;
}

export type Options = Partial<Omit<RaftConfig, "id" | "voters" | "storage">>;

export function newCore(id: number, voters: number[], storage = new MemoryStorage(), options: Options = {}): RaftCore {
  return createRaft({ id, voters, storage, random: seededRandom(id * 7919), electionTimeoutTicks: 10, ...options });
}

/** Persists a Ready into MemoryStorage exactly as the host loop (types.ts) says. */
export function persist(storage: MemoryStorage, ready: Ready, incoming: { chunks: Uint8Array[] }): void {
  for (const chunk of ready.snapshotChunks) {
    if (chunk.offset === 0) incoming.chunks = [];
    incoming.chunks.push(chunk.data.slice());
  }
  if (ready.snapshot) {
    const total = incoming.chunks.reduce((n, c) => n + c.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const c of incoming.chunks) {
      data.set(c, at);
      at += c.length;
    }
    storage.applySnapshot(ready.snapshot, data);
    incoming.chunks = [];
  }
  storage.append(ready.entries);
  if (ready.hardState) storage.setHardState(ready.hardState);
}

export interface TestNode {
  id: number;
  core: RaftCore;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  incoming: { chunks: Uint8Array[] };
}

export type Filter = (message: Message) => boolean;

/** A network of cores; `deliver` runs until quiet, dropping messages a filter rejects. */
export class Network {
  readonly nodes = new Map<number, TestNode>();
  readonly queue: Message[] = [];
  /** Every message sent (delivered or dropped), for counting. */
  readonly sent: Message[] = [];
  filters: Filter[] = [];

  constructor(ids: number[], options: Options = {}, storages: Map<number, MemoryStorage> = new Map()) {
    for (const id of ids) {
      const storage = storages.get(id) ?? new MemoryStorage();
      this.nodes.set(id, { id, core: newCore(id, ids, storage, options), storage, applied: [], readStates: [], incoming: { chunks: [] } });
    }
  }

  /**
   * Adds a node that starts with an empty log and no configuration (it waits to be
   * contacted by a leader that added it), or with the initial `voters` given.
   */
  addNode(id: number, voters: number[] = [], options: Options = {}, storage = new MemoryStorage()): TestNode {
    const node: TestNode = { id, core: newCore(id, voters, storage, options), storage, applied: [], readStates: [], incoming: { chunks: [] } };
    this.nodes.set(id, node);
    return node;
  }

  /**
   * Restarts `id` from its storage (MemoryStorage holds only what was persisted), with the
   * same initial voters it was created with (they are not in the log).
   */
  restart(id: number, initialVoters: number[], options: Options = {}): TestNode {
    const old = this.node(id);
    const node: TestNode = { id, core: newCore(id, initialVoters, old.storage, options), storage: old.storage, applied: [], readStates: [], incoming: { chunks: [] } };
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): TestNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: number): RaftCore {
    return this.node(id).core;
  }

  /** Handles every node's Ready once: persist, queue messages, apply, advance. */
  processReadies(): boolean {
    let any = false;
    for (const node of this.nodes.values()) {
      if (!node.core.hasReady()) continue;
      any = true;
      const ready = node.core.ready();
      for (const m of ready.messages) this.post(m);
      persist(node.storage, ready, node.incoming);
      node.applied.push(...ready.committedEntries);
      node.readStates.push(...ready.readStates);
      node.core.advance(ready);
    }
    return any;
  }

  post(message: Message): void {
    this.sent.push(message);
    if (this.filters.every((keep) => keep(message))) this.queue.push(message);
  }

  /** Runs Readies and deliveries until nothing moves (bounded). */
  deliver(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      const busy = this.processReadies();
      if (this.queue.length === 0 && !busy) return;
      const batch = this.queue.splice(0, this.queue.length);
      for (const m of batch) {
        const target = this.nodes.get(m.to);
        if (target) target.core.step(m);
      }
    }
    throw new Error("network did not settle");
  }

  tick(id: number, times = 1): void {
    for (let i = 0; i < times; i++) this.core(id).tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) node.core.tick();
      this.deliver();
    }
  }

  /** Makes `id` leader by ticking it alone past its election timeout, then delivering. */
  elect(id: number): void {
    const core = this.core(id);
    for (let i = 0; i < 100 && core.softState().role !== "leader"; i++) {
      core.tick();
      this.deliver();
    }
    if (core.softState().role !== "leader") throw new Error(`node ${id} did not become leader`);
  }

  /** Cuts every link touching `id` (both directions). */
  isolate(id: number): void {
    this.filters.push((m) => m.from !== id && m.to !== id);
  }

  /** Drops messages between the two groups. */
  partition(a: number[], b: number[]): void {
    this.filters.push((m) => !((a.includes(m.from) && b.includes(m.to)) || (b.includes(m.from) && a.includes(m.to))));
  }

  heal(): void {
    this.filters = [];
  }

  appliedData(id: number): string[] {
    return this.node(id).applied.filter((e) => e.type === EntryType.NORMAL && e.data.length > 0).map((e) => text(e.data));
  }
}

/** Takes a Ready, persists it and returns it without advancing. */
export function takeReady(node: { core: RaftCore; storage: MemoryStorage; incoming?: { chunks: Uint8Array[] } }): Ready {
  const ready = node.core.ready();
  persist(node.storage, ready, node.incoming ?? { chunks: [] });
  return ready;
}

/** ready + persist + advance, returning the Ready's messages plus any released by advance. */
export function drain(node: { core: RaftCore; storage: MemoryStorage; incoming?: { chunks: Uint8Array[] } }, rounds = 10): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < rounds && node.core.hasReady(); i++) {
    const ready = takeReady(node);
    out.push(...ready.messages);
    node.core.advance(ready);
  }
  return out;
}

export function message(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { ...newMessage(fields.type, fields.from, fields.to, fields.term), ...fields };
}
