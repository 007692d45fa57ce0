/** What the in-process node tests share: the README's counter, a started node, waiting for a condition. */
import type { Entry } from "../../src/proto/schema.js";
import type { RaftNode } from "../../src/node/raft-node.js";

/** The README's counter: the sum of every committed number (an event-sourced state machine). */
export class Counter {
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

export interface Started {
  id: number;
  node: RaftNode<number>;
  counter: Counter;
}

/** Polls `probe` every 10 ms until it returns a value (bounded: convergence, not timing). */
export async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function leaderOf(nodes: Started[]): Started | undefined {
  return nodes.find((n) => !n.node.failure() && n.node.status().role === "leader");
}
