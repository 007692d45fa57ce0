/**
 * KvClient.setEndpoints: a client follows a cluster whose members change (the torture
 * tool's workers do): requests go to the new endpoints, never to dropped ones.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/kv/client.js";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A server that answers every GET with its own name. */
async function namedServer(name: string): Promise<string> {
  const server = http.createServer((request, response) => {
    request.resume();
    response.writeHead(200, { "content-type": "application/octet-stream" });
    response.end(name);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("KvClient.setEndpoints", () => {
  it("sends the next requests to the new endpoints only", async () => {
    const [a, b, c] = [await namedServer("a"), await namedServer("b"), await namedServer("c")];
    const client = new KvClient({ endpoints: [a], operationTimeoutMs: 2000 });
    try {
      expect((await client.get("k"))?.toString()).toBe("a");
      client.setEndpoints([b]);
      expect((await client.get("k"))?.toString()).toBe("b");
      // The endpoint in use is kept when it stays in the list.
      client.setEndpoints([c, b]);
      expect((await client.get("k"))?.toString()).toBe("b");
      expect(() => client.setEndpoints([])).toThrow(/at least one endpoint/);
    } finally {
      client.close();
    }
  });
});
