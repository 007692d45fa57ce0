/**
 * KvClient's sessions: writes in flight at once from one client, each retried after its
 * first attempt was applied but its answer lost, are all answered from the state machine's
 * sessions (applied once), none refused as stale.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/kv/client.js";
import { encodeCommand } from "../../src/kv/command.js";
import { KvStateMachine } from "../../src/kv/state-machine.js";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/**
 * A one-node "cluster" in a test server: each PUT is applied to a real KvStateMachine as the
 * next log entry; the first attempt of each (client id, seq) loses its answer (the
 * connection is destroyed after applying), as when a leader applies a write and then fails.
 */
async function lossyServer(machine: KvStateMachine, seen: Array<{ clientId: string; seq: number }>): Promise<string> {
  let index = 0;
  const answered = new Set<string>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const clientId = String(request.headers["x-raftwal-client-id"]);
      const seq = Number(request.headers["x-raftwal-seq"]);
      seen.push({ clientId, seq });
      const key = decodeURIComponent(request.url!.slice("/kv/".length));
      const data = encodeCommand({ op: "put", key, value: Buffer.concat(chunks), clientId, seq });
      const result = machine.apply({ index: ++index, term: 1, type: 0, data });
      const attempt = `${clientId}#${seq}`;
      if (!answered.has(attempt)) {
        answered.add(attempt);
        request.socket.destroy();
        return;
      }
      const status = result.status === "ok" ? 200 : 409;
      response.writeHead(status, { "content-type": "application/json" });
      response.end(status === 200 ? "" : JSON.stringify({ error: "KV_ERR_STALE_SEQUENCE", message: JSON.stringify(result) }));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("KvClient sessions", () => {
  it("16 writes in flight at once, each retried after it was applied: every one succeeds, applied once", async () => {
    const machine = new KvStateMachine();
    const seen: Array<{ clientId: string; seq: number }> = [];
    const client = new KvClient({ endpoints: [await lossyServer(machine, seen)], clientId: "c", operationTimeoutMs: 10_000 });
    try {
      await Promise.all(Array.from({ length: 16 }, (_, k) => client.put(`key-${k}`, `value-${k}`)));
      // Sequential writes after that reuse the lanes: no new session per write.
      for (let k = 16; k < 40; k++) await client.put(`key-${k}`, `value-${k}`);
    } finally {
      client.close();
    }
    for (let k = 0; k < 40; k++) expect(Buffer.from(machine.get(`key-${k}`) ?? []).toString()).toBe(`value-${k}`);
    expect(machine.sessionCount()).toBe(16);
    // Each lane's seqs go up by one, in order, whatever the retries.
    const lanes = new Map<string, number[]>();
    for (const { clientId, seq } of seen) lanes.set(clientId, [...(lanes.get(clientId) ?? []), seq]);
    for (const seqs of lanes.values()) expect(new Set(seqs)).toEqual(new Set(Array.from({ length: Math.max(...seqs) }, (_, i) => i + 1)));
  });
});
