/** What the in-process node tests share: the README's counter and a started node. */
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

export function leaderOf(nodes: Started[]): Started | undefined {
  return nodes.find((n) => !n.node.failure() && n.node.status().role === "leader");
}
