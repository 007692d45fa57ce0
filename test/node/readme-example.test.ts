/**
 * The embedding example from the README, run as a test so it stays true. Keep the two in
 * step: the code between the markers is what the README shows.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";

it("the README's embedding example runs", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "raftwal-readme-"));
  const port = await findFreeBasePort(1);
  try {
    // --- README example start ---
    const { createNode } = await import("../../src/index.js");
    type Entry = import("../../src/index.js").Entry;

    // An event-sourced counter: apply() folds each committed command into the state.
    class Counter {
      value = 0;
      apply(entry: Entry): number {
        this.value += Number(new TextDecoder().decode(entry.data));
        return this.value;
      }
      snapshot(): Iterable<Uint8Array> {
        return [new TextEncoder().encode(String(this.value))]; // captured now: applying goes on while it is written
      }
      async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
        let text = "";
        for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
        this.value = Number(text);
      }
    }

    const counter = new Counter();
    const node = await createNode({
      id: 1,
      clusterId: "example",
      initialClusterState: "new", // found a new cluster on first start
      peers: [{ id: 1, host: "127.0.0.1", port }], // add the other founding members here
      dataDir,
      stateMachine: counter,
    });
    while (node.status().role !== "leader") await new Promise((r) => setTimeout(r, 20));
    const result = await node.propose(new TextEncoder().encode("5")); // resolves once committed and applied
    await node.read(); // a linearizable read barrier (ReadIndex)
    console.log(result, counter.value, node.status());
    await node.close();
    // --- README example end ---
    expect(result).toBe(5);
    expect(counter.value).toBe(5);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
