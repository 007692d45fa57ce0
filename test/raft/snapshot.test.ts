/** Log compaction and InstallSnapshot in chunks (Raft paper, section 7). */
import { describe, expect, it } from "vitest";
import type { Message, SnapshotMeta } from "../../src/proto/schema.js";
import { MemoryStorage } from "../../src/raft/index.js";
import type { RaftCore } from "../../src/raft/types.js";
import { bytes, drain, entry, message, MessageType, Network, newCore, persist, storageWithTerms } from "./helpers.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

const noPreVote = { preVote: false, checkQuorum: false };

/** The application compacts: snapshot of its applied state at `index`, then tell the core. */
function compact(net: Network, id: number, payload: Uint8Array): SnapshotMeta {
  const node = net.node(id);
  const index = node.core.appliedIndex();
  const meta = { index, term: node.storage.term(index), config: clusterConfigOf([1, 2, 3]), sizeBytes: payload.length };
  node.storage.createSnapshot(meta, payload);
  node.storage.compact(index);
  node.core.snapshotTaken(meta);
  return meta;
}

function payload(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
  return data;
}

/**
 * Three nodes, 1 leading; node 3 is cut off while `entries` commands commit, then node 1
 * compacts them into a snapshot of `snapshotBytes` bytes and the network heals: node 3 can
 * only catch up through InstallSnapshot.
 */
function followerBehindSnapshot({ snapshotChunkBytes, entries, snapshotBytes }: { snapshotChunkBytes: number; entries: number; snapshotBytes: number }): {
  net: Network;
  meta: SnapshotMeta;
  data: Uint8Array;
} {
  const net = new Network([1, 2, 3], { snapshotChunkBytes });
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < entries; i++) net.core(1).propose(bytes(`e${i}`));
  net.deliver();
  const data = payload(snapshotBytes);
  const meta = compact(net, 1, data);
  net.heal();
  return { net, meta, data };
}

/** Node 2 alone, a follower without PreVote or CheckQuorum, fed messages by hand. */
function loneFollower(storage = new MemoryStorage()): { core: RaftCore; storage: MemoryStorage; incoming: { chunks: Uint8Array[] } } {
  return { core: newCore(2, [1, 2, 3], storage, noPreVote), storage, incoming: { chunks: [] } };
}

function chunkMessage(meta: SnapshotMeta, data: Uint8Array, offset: number, length: number, term = 2): Message {
  const part = data.subarray(offset, offset + length);
  return message({
    type: MessageType.SNAPSHOT,
    from: 1,
    to: 2,
    term,
    snapshot: { meta, offset, data: part, done: offset + part.length >= meta.sizeBytes },
  });
}

describe("log compaction and InstallSnapshot (section 7)", () => {
  it("a follower whose next entry is compacted receives the snapshot in chunks and installs it", () => {
    const { net, meta, data } = followerBehindSnapshot({ snapshotChunkBytes: 1000, entries: 10, snapshotBytes: 4500 });
    net.sent.length = 0;
    net.tickAll(5);
    const chunks = net.sent.filter((m) => m.type === MessageType.SNAPSHOT && m.to === 3);
    expect(chunks.map((m) => [m.snapshot!.offset, m.snapshot!.data.length, m.snapshot!.done])).toEqual([
      [0, 1000, false],
      [1000, 1000, false],
      [2000, 1000, false],
      [3000, 1000, false],
      [4000, 500, true],
    ]);
    const follower = net.node(3).storage;
    expect(follower.snapshotMeta()).toMatchObject({ index: meta.index, term: meta.term, sizeBytes: 4500 });
    expect(follower.readSnapshotChunk(0, 10_000)).toEqual(data);
    expect(follower.firstIndex()).toBe(meta.index + 1);
    // It follows the leader from there on.
    net.core(1).propose(bytes("later"));
    net.tickAll(3);
    expect(net.appliedData(3)).toEqual(["later"]);
    expect(net.core(3).appliedIndex()).toBe(net.core(1).appliedIndex());
    // Reference: section 7 ("the leader must occasionally send snapshots to followers that lag behind"; "divided into chunks")
  });

  it("the leader pipelines a window of chunks ahead of the follower's acknowledgements", () => {
    const { net } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 1000 });
    net.filters.push((m) => !(m.type === MessageType.SNAPSHOT_RESPONSE)); // hold every acknowledgement
    net.sent.length = 0;
    net.tickAll(3);
    const offsets = net.sent.filter((m) => m.type === MessageType.SNAPSHOT).map((m) => m.snapshot!.offset);
    expect(offsets).toEqual([0, 100, 200, 300]);
    net.heal();
    net.tickAll(20);
    expect(net.node(3).storage.snapshotMeta().sizeBytes).toBe(1000);
    // Reference: section 7 (chunks of one InstallSnapshot), section 5.3 (pipelining, by analogy)
  });

  it("each chunk is acknowledged only after advance() made it durable, with the next expected offset", () => {
    const node = loneFollower();
    const storage = node.storage;
    const data = payload(300);
    const meta = { index: 10, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 300 };
    node.core.step(chunkMessage(meta, data, 0, 100));
    const ready = node.core.ready();
    expect(ready.snapshotChunks.map((c) => [c.offset, c.data.length, c.done])).toEqual([[0, 100, false]]);
    expect(ready.messages).toEqual([]);
    persist(storage, ready, node.incoming);
    node.core.advance(ready);
    const [ackMessage] = node.core.takeMessages();
    expect(ackMessage).toMatchObject({ type: MessageType.SNAPSHOT_RESPONSE, reject: false, index: 100 });
    // An out-of-order chunk is rejected with the offset expected.
    node.core.step(chunkMessage(meta, data, 200, 100));
    const rejection = drain(node).find((m) => m.type === MessageType.SNAPSHOT_RESPONSE)!;
    expect(rejection).toMatchObject({ reject: true, index: 100 });
    // Reference: section 7, Figure 13 ("Reply ... after" writing data; "offset")
  });

  it("chunks of one snapshot index from two leaders are never mixed", () => {
    const node = loneFollower();
    const storage = node.storage;
    const meta = { index: 10, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 200 };
    node.core.step(chunkMessage(meta, payload(200), 0, 100, 2));
    drain(node);
    // A new leader (node 3, term 3) sends the same snapshot index: its second chunk alone is refused.
    const second = chunkMessage(meta, payload(200), 100, 100, 3);
    node.core.step({ ...second, from: 3 });
    const reply = drain(node).find((m) => m.type === MessageType.SNAPSHOT_RESPONSE)!;
    expect(reply).toMatchObject({ to: 3, reject: true, index: 0 });
    expect(storage.snapshotMeta().index).toBe(0);
    // Reference: section 7 (a snapshot is one leader's; chunks are written "at the given offset" of that file)
  });

  it("a Ready that installs a snapshot carries no chunk of a later transfer (finding 1 from the simulation)", () => {
    const node = loneFollower();
    const storage = node.storage;
    const first = { index: 5, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 50 };
    const second = { index: 9, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 80 };
    node.core.step(chunkMessage(first, payload(50), 0, 50));
    node.core.step(chunkMessage(second, payload(80), 0, 40));
    const ready = node.core.ready();
    expect(ready.snapshot).toEqual(first);
    expect(ready.snapshotChunks.map((c) => [c.meta.index, c.offset, c.done])).toEqual([[5, 0, true]]);
    persist(storage, ready, node.incoming);
    node.core.advance(ready);
    // Once the install was handed out, the later transfer is accepted (the leader resends it).
    node.core.step(chunkMessage(second, payload(80), 0, 40));
    expect(node.core.ready().snapshotChunks.map((c) => [c.meta.index, c.offset])).toEqual([[9, 0]]);
    // Reference: section 7 (install after the last chunk is written); types.ts host loop step 4
  });

  it("the last chunk installs the snapshot; entries after it that match are kept", () => {
    // The follower's durable log holds (5, term 1) and entries 6..8 after it.
    const storage = storageWithTerms([1, 1, 1, 1, 1, 1, 1, 1], 1);
    const node = loneFollower(storage);
    const data = payload(150);
    const meta = { index: 5, term: 1, config: clusterConfigOf([1, 2, 3]), sizeBytes: 150 };
    node.core.step(chunkMessage(meta, data, 0, 100));
    drain(node);
    node.core.step(chunkMessage(meta, data, 100, 100));
    const ready = node.core.ready();
    expect(ready.snapshot).toEqual(meta);
    expect(ready.hardState?.commit).toBe(5);
    persist(storage, ready, node.incoming);
    node.core.advance(ready);
    expect(storage.firstIndex()).toBe(6);
    expect(storage.lastIndex()).toBe(8);
    expect(node.core.appliedIndex()).toBe(5);
    const done = node.core.takeMessages().find((m) => m.type === MessageType.SNAPSHOT_RESPONSE)!;
    expect(done.snapshot!.done).toBe(true);
    // The kept entries still satisfy the consistency check.
    node.core.step(message({ type: MessageType.APPEND, from: 1, to: 2, term: 2, index: 8, logTerm: 1, commit: 8, entries: [entry(9, 2)] }));
    expect(drain(node).map((m) => [m.reject, m.index])).toEqual([[false, 9]]);
    // Reference: section 7 ("If instead the follower receives a snapshot that describes a prefix of its log ... entries following the snapshot are still valid and must be retained")
  });

  it("a snapshot that conflicts with the follower's log replaces all of it", () => {
    const storage = storageWithTerms([1, 1, 1, 1, 1, 1], 1);
    const node = loneFollower(storage);
    const data = payload(50);
    const meta = { index: 4, term: 2, config: clusterConfigOf([1, 2, 3]), sizeBytes: 50 };
    node.core.step(chunkMessage(meta, data, 0, 100, 3));
    drain(node);
    expect(storage.snapshotMeta().index).toBe(4);
    expect(storage.firstIndex()).toBe(5);
    expect(storage.lastIndex()).toBe(4);
    expect(node.core.commitIndex()).toBe(4);
    // Reference: section 7 ("the follower discards its entire log; it is all superseded by the snapshot")
  });

  it("a snapshot the follower already covers is answered with its commit index, not installed", () => {
    const storage = storageWithTerms([1, 1, 1], 1);
    storage.setHardState({ term: 1, vote: 0, commit: 3 });
    const node = loneFollower(storage);
    node.core.step(chunkMessage({ index: 2, term: 1, config: clusterConfigOf([1, 2, 3]), sizeBytes: 10 }, payload(10), 0, 10));
    const out = drain(node);
    expect(out.map((m) => [m.type, m.index])).toEqual([[MessageType.APPEND_RESPONSE, 3]]);
    expect(storage.snapshotMeta().index).toBe(0);
    // Reference: section 7, Figure 13
  });

  it("a lost chunk is sent again after an election timeout", () => {
    const { net } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 250 });
    let dropped = 0;
    net.filters.push((m) => !(m.type === MessageType.SNAPSHOT && m.snapshot!.offset === 100 && dropped++ === 0));
    net.tickAll(30);
    expect(dropped).toBeGreaterThan(1);
    expect(net.node(3).storage.snapshotMeta().sizeBytes).toBe(250);
    // Reference: section 7 (InstallSnapshot is retried like any RPC, section 5.1 "Servers retry RPCs if they do not receive a response in a timely manner")
  });

  it("a follower that holds more of the snapshot than the window the leader resends makes the leader resume from its offset", () => {
    const { net, meta } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 1000 });
    // The acknowledgements of the chunks after offset 400 are lost: the follower holds 800 bytes, the leader knows of 400.
    net.filters.push((m) => !(m.type === MessageType.SNAPSHOT_RESPONSE && m.index > 400));
    net.tickAll(3);
    expect(net.node(3).incoming.chunks.reduce((bytes, chunk) => bytes + chunk.length, 0)).toBe(800);
    // A rejection sent early in the transfer (a chunk had arrived out of order), delivered late: the leader goes back to 0.
    const term = net.core(1).softState().term;
    net.core(1).step(message({ type: MessageType.SNAPSHOT_RESPONSE, from: 3, to: 1, term, reject: true, index: 0, snapshot: { meta, offset: 0, data: new Uint8Array(0), done: false } }));
    net.heal();
    net.tickAll(60);
    expect(net.node(3).storage.snapshotMeta().sizeBytes, "the snapshot installed").toBe(1000);
    // Reference: section 7 (InstallSnapshot "offset": the follower says where it stands; the leader resumes there)
  });

  it("a newer snapshot taken while one is sent restarts the transfer with it, from offset 0; every chunk is its meta's bytes", () => {
    const { net, meta, data } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 1000 });
    const payloads = new Map([[meta.index, data]]);
    net.filters.push((m) => m.type !== MessageType.SNAPSHOT_RESPONSE); // the first window stays in flight
    net.tickAll(3);
    // The application takes a newer, shorter snapshot meanwhile (the follower's log is compacted away again).
    net.core(1).propose(bytes("after the first snapshot"));
    net.tickAll(3);
    const newer = compact(net, 1, payload(250));
    expect(newer.index).toBeGreaterThan(meta.index);
    payloads.set(newer.index, payload(250));
    net.heal();
    net.tickAll(30);
    const chunks = net.sent.filter((m) => m.type === MessageType.SNAPSHOT && m.to === 3).map((m) => m.snapshot!);
    for (const chunk of chunks) expect(chunk.data).toEqual(payloads.get(chunk.meta.index)!.subarray(chunk.offset, chunk.offset + chunk.data.length));
    const firstOfNewer = chunks.findIndex((chunk) => chunk.meta.index === newer.index);
    expect(firstOfNewer, "chunks of the older one were sent first").toBeGreaterThan(0);
    expect(chunks[firstOfNewer].offset, "the newer snapshot is sent from its start").toBe(0);
    expect(chunks.slice(firstOfNewer).every((chunk) => chunk.meta.index === newer.index), "the older one is sent no more").toBe(true);
    expect(net.node(3).storage.snapshotMeta()).toMatchObject({ index: newer.index, sizeBytes: 250 });
    // Reference: section 7 (the leader sends its current snapshot; a newer one supersedes the older)
  });

  it("sendingSnapshot() holds while the follower answers the transfer, not once it went silent for two election timeouts, nor after it installed", () => {
    const { net, meta } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 1000 });
    const leader = net.core(1);
    expect(leader.sendingSnapshot(), "before the transfer").toBe(false);
    // The follower takes the first chunks and answers; then it goes silent (its answers are lost).
    let answers = 0;
    net.filters.push((m) => !(m.type === MessageType.SNAPSHOT_RESPONSE && ++answers > 2));
    net.tickAll(2);
    expect(leader.progress().find((p) => p.id === 3)!.state).toBe("snapshot");
    expect(leader.sendingSnapshot(), "answered lately").toBe(true);
    net.tickAll(10); // the election timeout (helpers.ts)
    expect(leader.sendingSnapshot(), "silent for one election timeout").toBe(true);
    net.tickAll(10);
    expect(leader.softState().role).toBe("leader");
    expect(leader.progress().find((p) => p.id === 3)!.state).toBe("snapshot");
    expect(leader.sendingSnapshot(), "silent for two election timeouts").toBe(false);
    expect(net.core(2).sendingSnapshot(), "a follower never").toBe(false);
    net.heal();
    net.tickAll(30);
    expect(net.node(3).storage.snapshotMeta().index).toBe(meta.index);
    expect(leader.sendingSnapshot(), "installed").toBe(false);
    // Reference: section 7; etcd's server pauses compaction while it sends a snapshot (src/node/snapshot-policy.ts)
  });

  it("sendingSnapshot() holds after the install until the follower acknowledged the entries the leader had then, not once it went silent", () => {
    const { net, meta } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 1000 });
    const leader = net.core(1);
    // The snapshot gets through; once it is installed, appends do not.
    net.filters.push((m) => !(m.type === MessageType.APPEND && m.to === 3 && net.node(3).storage.snapshotMeta().index === meta.index));
    for (let i = 0; i < 2; i++) leader.propose(bytes(`after-${i}`));
    net.deliver();
    const leaderLast = leader.progress().find((p) => p.id === 1)!.match;
    expect(leaderLast).toBeGreaterThan(meta.index);
    for (let tick = 0; tick < 30 && net.node(3).storage.snapshotMeta().index !== meta.index; tick++) net.tickAll(1);
    expect(net.node(3).storage.snapshotMeta().index, "installed").toBe(meta.index);
    expect(leader.progress().find((p) => p.id === 3)!.match).toBe(meta.index);
    // Compacting now to the leader's last entry would cost the follower a second snapshot.
    expect(leader.sendingSnapshot(), "installed, the entries after it not acknowledged").toBe(true);
    net.tickAll(20); // two election timeouts (helpers.ts) without an answer
    expect(leader.sendingSnapshot(), "silent for two election timeouts").toBe(false);
    net.heal();
    net.tickAll(3);
    expect(leader.progress().find((p) => p.id === 3)!.match).toBe(leaderLast);
    expect(leader.sendingSnapshot(), "caught up").toBe(false);
    // Reference: section 7; etcd keeps entries behind its snapshots for a follower to catch up (SnapshotCatchUpEntries)
  });

  it("sendingSnapshot() holds while a follower catching up after an install keeps acknowledging entries", () => {
    // One entry per append, so that the entries after the snapshot can arrive one at a time.
    const net = new Network([1, 2, 3], { snapshotChunkBytes: 100, messageBytesMax: 1 });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 3; i++) net.core(1).propose(bytes(`e${i}`));
    net.deliver();
    const meta = compact(net, 1, payload(1000));
    net.heal();
    const leader = net.core(1);
    // The entries after the snapshot reach the follower one append every 15 ticks: 60 ticks
    // in all, longer than the two election timeouts a silent follower is given.
    let appendsAllowed = 0;
    net.filters.push((m) => !(m.type === MessageType.APPEND && m.to === 3 && m.entries.length > 0 && appendsAllowed-- <= 0));
    for (let i = 0; i < 4; i++) leader.propose(bytes(`after-${i}`));
    net.deliver();
    const leaderLast = leader.progress().find((p) => p.id === 1)!.match;
    const followerMatch = () => leader.progress().find((p) => p.id === 3)!.match;
    for (let tick = 0; tick < 30 && net.node(3).storage.snapshotMeta().index !== meta.index; tick++) net.tickAll(1);
    expect(net.node(3).storage.snapshotMeta().index, "installed").toBe(meta.index);
    let acknowledgedAfterInstall = 0;
    for (let round = 0; round < 12 && followerMatch() < leaderLast; round++) {
      net.tickAll(15);
      expect(leader.sendingSnapshot(), `catching up at ${followerMatch()} of ${leaderLast}`).toBe(true);
      const before = followerMatch();
      appendsAllowed = 1;
      net.tickAll(1);
      appendsAllowed = 0;
      if (followerMatch() > before) acknowledgedAfterInstall += 1;
    }
    expect(followerMatch()).toBe(leaderLast);
    expect(acknowledgedAfterInstall, "acknowledged one append at a time").toBeGreaterThanOrEqual(3);
    expect(leader.sendingSnapshot(), "caught up").toBe(false);
  });

  it("reportSnapshot(false) returns the follower to probe state", () => {
    const { net } = followerBehindSnapshot({ snapshotChunkBytes: 100, entries: 3, snapshotBytes: 250 });
    net.filters.push((m) => m.type !== MessageType.SNAPSHOT);
    net.tickAll(2);
    expect(net.core(1).progress().find((p) => p.id === 3)!.state).toBe("snapshot");
    net.core(1).reportSnapshot(3, false);
    expect(net.core(1).progress().find((p) => p.id === 3)!.state).toBe("probe");
    net.heal();
    net.tickAll(10);
    expect(net.node(3).storage.snapshotMeta().sizeBytes).toBe(250);
    // Reference: section 7; etcd's ReportSnapshot
  });
});
