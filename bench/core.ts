/**
 * Raft core benchmark (`npm run bench:core`): a 3-node cluster in one process over
 * MemoryStorage, no simulated delay. Measures committed entries per second (counted
 * when the leader hands them out in Ready.committedEntries) with 1, 64 and 4096
 * proposals in flight, 128-byte entries, and the heap used per million entries in
 * flight. Prints a table and writes bench/results/core.json.
 *
 * The host loop is the one of src/raft/types.ts: for each node with a Ready, send its
 * messages, persist (MemoryStorage), apply, advance, then send what advance released
 * (takeMessages); the leader's clients propose again as soon as they are acknowledged
 * (committed entries applied), keeping the number in flight constant. Messages are delivered in FIFO order by reference (no encoding:
 * this measures the core, not the codec or the network).
 */
import { writeResults } from "./results.js";
import { performance } from "node:perf_hooks";
import type { Message } from "../src/proto/schema.js";
import { createRaft, MemoryStorage, type RaftCore } from "../src/raft/index.js";
import { handleUsage } from "./usage.js";

handleUsage(
  `Usage: npm run bench:core    (node --expose-gc dist/bench/core.js)

The Raft core alone: 3 nodes in one process, in-memory storage, committed entries/s with
1, 64 and 4096 proposals in flight, heap per million entries. Prints a table; writes
bench/results/core.json.

  --help    this text
`,
  [],
);

const ENTRY_BYTES = 128;
const VOTERS = [1, 2, 3];
const INFLIGHT_CASES = [1, 64, 4096];
/** Each case runs this long after its warm-up. */
const MEASURE_MS = 2000;
const WARMUP_MS = 300;
/**
 * Nodes snapshot and compact their log every this many applied entries, keeping the
 * last COMPACT_SLACK_ENTRIES (so a follower a little behind still gets appends). A
 * small in-memory log keeps the arrays young: holding 64 Ki entries per node instead
 * costs about 0.3 us per entry in garbage collection (measured), which is the
 * benchmark's storage, not the core.
 */
const COMPACT_EVERY_ENTRIES = 4096;
const COMPACT_SLACK_ENTRIES = 1024;
const HEAP_ENTRIES = 1_000_000;
/** Readies one node may handle back to back in one pump round. */
const READIES_PER_NODE_PER_ROUND = 2;

interface BenchNode {
  id: number;
  core: RaftCore;
  storage: MemoryStorage;
  compactedTo: number;
}

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

class Cluster {
  readonly nodes: BenchNode[];
  private queue: Message[] = [];
  /** Non-empty entries the leader handed out committed. */
  committed = 0;

  constructor() {
    this.nodes = VOTERS.map((id) => {
      const storage = new MemoryStorage();
      const core = createRaft({ id, voters: VOTERS, storage, random: seeded(id), electionTimeoutTicks: 10 });
      return { id, core, storage, compactedTo: 0 };
    });
  }

  get leader(): RaftCore {
    return this.nodes[0].core;
  }

  /** Ticks node 1 until it leads, pumping in between. */
  elect(): void {
    for (let i = 0; i < 200 && this.leader.softState().role !== "leader"; i++) {
      this.leader.tick();
      this.pump();
    }
    if (this.leader.softState().role !== "leader") throw new Error("node 1 did not become leader");
    for (let i = 0; i < 5; i++) this.pump();
  }

  /**
   * One round: every node handles its Readies (a host takes the next Ready as soon as
   * it advanced the previous one, so the leader's clients can propose again within
   * the round), then every queued message is delivered.
   */
  pump(): void {
    for (const node of this.nodes) {
      for (let i = 0; i < READIES_PER_NODE_PER_ROUND && node.core.hasReady(); i++) this.handleReady(node);
    }
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    for (let i = 0; i < queue.length; i++) this.nodes[queue[i].to - 1].core.step(queue[i]);
  }

  private handleReady(node: BenchNode): void {
    const core = node.core;
    const queue = this.queue;
    const ready = core.ready();
    for (const m of ready.messages) queue.push(m);
    if (ready.entries.length > 0) node.storage.append(ready.entries);
    if (ready.hardState) node.storage.setHardState(ready.hardState);
    const entries = ready.committedEntries;
    const leader = node.id === 1;
    if (leader) for (let i = 0; i < entries.length; i++) if (entries[i].data.length > 0) this.committed += 1;
    core.advance(ready);
    for (const m of core.takeMessages()) queue.push(m);
    this.maybeCompact(node);
    if (leader && entries.length > 0) this.onLeaderApplied();
  }

  /** The leader applied entries: its clients, acknowledged, propose again at once. */
  onLeaderApplied: () => void = () => {};

  private maybeCompact(node: BenchNode): void {
    const index = node.core.appliedIndex() - COMPACT_SLACK_ENTRIES;
    if (index - node.compactedTo < COMPACT_EVERY_ENTRIES) return;
    const meta = { index, term: node.storage.term(index), sizeBytes: 0, config: node.core.clusterConfigAt(index) };
    node.storage.createSnapshot(meta, new Uint8Array(0));
    node.storage.compact(index);
    node.core.snapshotTaken(meta);
    node.compactedTo = index;
  }
}

interface ThroughputResult {
  inflight: number;
  committedEntries: number;
  seconds: number;
  entriesPerSecond: number;
  pumpRounds: number;
}

function runThroughput(inflight: number): ThroughputResult {
  const cluster = new Cluster();
  cluster.elect();
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  const leader = cluster.leader;
  let proposed = 0;
  let rounds = 0;
  const topUp = () => {
    while (proposed - cluster.committed < inflight) {
      leader.propose(payload);
      proposed += 1;
    }
  };
  cluster.onLeaderApplied = topUp;
  const loop = (untilMs: number) => {
    while (performance.now() < untilMs) {
      // Bounded batches of rounds between clock reads.
      for (let r = 0; r < 64; r++) {
        topUp();
        cluster.pump();
        rounds += 1;
      }
    }
  };
  loop(performance.now() + WARMUP_MS);
  const startCommitted = cluster.committed;
  const startRounds = rounds;
  const start = performance.now();
  loop(start + MEASURE_MS);
  const seconds = (performance.now() - start) / 1000;
  const committedEntries = cluster.committed - startCommitted;
  return { inflight, committedEntries, seconds, entriesPerSecond: committedEntries / seconds, pumpRounds: rounds - startRounds };
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect) {
    collect();
    collect();
  }
}

interface HeapResult {
  /** Own payload per entry (128-byte Uint8Array each) or one payload shared by all (core overhead only). */
  payload: "own" | "shared";
  entries: number;
  heapUsedBytes: number;
  externalBytes: number;
  heapBytesPerMillionEntries: number;
  heapPlusExternalBytesPerMillionEntries: number;
  gcExposed: boolean;
}

/**
 * Heap held for entries in flight: the leader accepts HEAP_ENTRIES proposals (each
 * with its own 128-byte payload), persists them and sends what flow control allows;
 * the followers hear nothing, so none commits.
 */
function measureHeap(payload: "own" | "shared"): HeapResult {
  const cluster = new Cluster();
  cluster.elect();
  const leader = cluster.leader;
  const shared = new Uint8Array(ENTRY_BYTES);
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < HEAP_ENTRIES; i++) leader.propose(payload === "own" ? new Uint8Array(ENTRY_BYTES) : shared);
  const ready = leader.ready();
  cluster.nodes[0].storage.append(ready.entries);
  leader.advance(ready);
  const held = [ready, leader.takeMessages()];
  gc();
  const after = process.memoryUsage();
  if (held.length !== 2) throw new Error("unreachable");
  const heapUsedBytes = after.heapUsed - before.heapUsed;
  const externalBytes = after.external + after.arrayBuffers - before.external - before.arrayBuffers;
  return {
    payload,
    entries: HEAP_ENTRIES,
    heapUsedBytes,
    externalBytes,
    heapBytesPerMillionEntries: (heapUsedBytes / HEAP_ENTRIES) * 1e6,
    heapPlusExternalBytesPerMillionEntries: ((heapUsedBytes + externalBytes) / HEAP_ENTRIES) * 1e6,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === "function",
  };
}

function main(): void {
  const throughput = INFLIGHT_CASES.map((inflight) => {
    gc();
    return runThroughput(inflight);
  });
  const heap = [measureHeap("shared"), measureHeap("own")];
  const targets = { 1: 100_000, 4096: 1_000_000 } as Record<number, number>;
  console.log(`raft core, 3 nodes in one process, MemoryStorage, ${ENTRY_BYTES}-byte entries, node ${process.version}`);
  console.log("");
  console.log("in flight | committed entries/s | target              | entries   | seconds | pump rounds");
  console.log("----------|---------------------|---------------------|-----------|---------|------------");
  for (const r of throughput) {
    const target = targets[r.inflight];
    const verdict = target === undefined ? "-" : `${r.entriesPerSecond >= target ? "met" : "MISSED"} ${target.toLocaleString("en-US")}`;
    console.log(
      `${String(r.inflight).padStart(9)} | ${Math.round(r.entriesPerSecond).toLocaleString("en-US").padStart(19)} | ${verdict.padEnd(19)} | ${String(r.committedEntries).padStart(9)} | ${r.seconds.toFixed(2).padStart(7)} | ${String(r.pumpRounds).padStart(10)}`,
    );
  }
  console.log("");
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  for (const h of heap) {
    console.log(
      `heap per million entries in flight (${h.payload === "shared" ? "core only, one shared payload" : "each entry with its own 128-byte payload"}): ` +
        `${mib(h.heapBytesPerMillionEntries)} MiB heap, ${mib(h.heapPlusExternalBytesPerMillionEntries)} MiB with external buffers` +
        `${h.gcExposed ? "" : " [run with --expose-gc for stable numbers]"}`,
    );
  }
  console.log("(in flight: proposed on the leader, persisted there, not committed; the leader's MemoryStorage log is included)");
  const results = { benchmark: "core", node: process.version, entryBytes: ENTRY_BYTES, measureMs: MEASURE_MS, throughput, heap };
  console.log(`wrote ${writeResults("core", results)}`);
}

main();
