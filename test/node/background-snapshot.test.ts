/**
 * Snapshots are written off the apply path: while the state machine's snapshot stream is
 * still being written, the node keeps committing and applying proposals.
 */
import { afterEach, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import type { Entry } from "../../src/proto/schema.js";
import { createNode, type RaftNode } from "../../src/node/raft-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

/** A counter whose snapshot stream waits at `gate` before its only chunk. */
class SlowSnapshotCounter {
  value = 0;
  snapshotsStarted = 0;
  gate: Promise<void> = Promise.resolve();
  apply(entry: Entry): number {
    this.value += Number(new TextDecoder().decode(entry.data));
    return this.value;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const captured = this.value;
    const gate = this.gate;
    this.snapshotsStarted += 1;
    return (async function* () {
      await gate;
      yield new TextEncoder().encode(String(captured));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = "";
    for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
    this.value = Number(text);
  }
}

let node: RaftNode<number> | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

it("a snapshot being written does not pause applying", async () => {
  const counter = new SlowSnapshotCounter();
  let release!: () => void;
  counter.gate = new Promise((resolve) => (release = resolve));
  const port = await findFreeBasePort(1);
  node = await createNode<number>({
    id: 1,
    clusterId: "snap",
    dataDir: "/data",
    initialClusterState: "new",
    peers: [{ id: 1, host: "127.0.0.1", port }],
    stateMachine: counter,
    tickMs: 10,
    snapshotEveryEntries: 5,
    storage: { fs: new MemoryFileSystem() },
    logger: silentLogger,
  });
  while (node.status().role !== "leader") await new Promise((r) => setTimeout(r, 10));
  const one = new TextEncoder().encode("1");
  for (let i = 0; i < 6; i++) await node.propose(one);
  expect(counter.snapshotsStarted).toBe(1);
  // The snapshot stream is stalled; proposals still commit and apply.
  for (let i = 0; i < 20; i++) expect(await node.propose(one)).toBe(7 + i);
  expect(node.status().snapshotIndex).toBe(0);
  release();
  while (node.status().snapshotIndex === 0) await new Promise((r) => setTimeout(r, 10));
  expect(node.status().snapshotIndex).toBeGreaterThanOrEqual(5);
});
