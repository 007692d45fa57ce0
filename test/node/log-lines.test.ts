/**
 * The node's JSON log lines: each field once. RaftNode's logger carries `node`, and the
 * parts it hands a child of that logger (the transport, the KV API) must not add it again
 * (JSON.parse would silently keep the last of two, so the check reads the raw text).
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { startKvNode } from "../../src/kv/kv-node.js";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { createLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

describe("node log lines", () => {
  it("name the node once per line, transport lines included", async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split("\n").filter((line) => line.length > 0));
        done();
      },
    });
    const port = await findFreeBasePort(1);
    const node = await startKvNode({
      id: 7,
      clusterId: "logs",
      initialClusterState: "new",
      peers: [{ id: 7, host: "127.0.0.1", port, api: { host: "127.0.0.1", port: port + 100 } }],
      dataDir: "/data/node-7",
      storage: { fs: new MemoryFileSystem() },
      tickMs: 10,
      logger: createLogger({ level: "info", destination }),
    });
    await node.close();
    const transportLines = lines.filter((line) => line.includes('"component":"transport"'));
    expect(transportLines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.match(/"node":/g)?.length ?? 0, line).toBeLessThanOrEqual(1);
    for (const line of transportLines) expect(JSON.parse(line)).toMatchObject({ node: 7 });
  });
});
