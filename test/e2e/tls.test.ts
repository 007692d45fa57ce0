/**
 * End-to-end with mutual TLS on peer links: a cluster whose nodes hold certificates from
 * one CA elects a leader and replicates; a peer presenting a certificate from another CA,
 * or none at all, is refused, and the cluster keeps serving.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/kv/client.js";
import { findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { createTestPki, type TestPki } from "../transport/certificates.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("a 3-node cluster with mutual TLS between peers", () => {
  it("replicates over TLS and refuses peers without a certificate from the cluster's CA", async () => {
    const pki: TestPki = createTestPki();
    cleanups.push(() => pki.remove());
    const dir = await mkdtemp(join(tmpdir(), "raftwal-e2e-tls-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    for (const id of [1, 2, 3]) {
      const pem = pki.issue("cluster-ca", `node-${id}`);
      await writeFile(join(dir, `node-${id}.crt`), pem.cert);
      await writeFile(join(dir, `node-${id}.key`), pem.key);
      await writeFile(join(dir, "ca.crt"), pem.ca);
    }
    const cluster = new LocalCluster({
      nodes: 3,
      dir,
      basePort: await findFreeBasePort(3),
      nodeArgs: (id) => ["--tick-ms", "20", "--tls-ca", join(dir, "ca.crt"), "--tls-cert", join(dir, `node-${id}.crt`), "--tls-key", join(dir, `node-${id}.key`)],
    });
    cleanups.push(() => cluster.stop());
    await cluster.start();
    await cluster.waitForLeader();
    const client = new KvClient({ endpoints: cluster.specs.map((s) => s.apiUrl) });
    cleanups.push(() => client.close());
    await client.put("secure", "yes");
    expect((await client.get("secure"))?.toString()).toBe("yes");

    const port = cluster.spec(1).peerPort;
    // Control: a certificate from the cluster's CA gets through TLS (it then has 5 s to send its handshake).
    const member = pki.issue("cluster-ca", "extra-member");
    expect(await tlsConnectOutcome(port, { ca: member.ca, cert: member.cert, key: member.key })).toBe("accepted");
    const rogue = pki.issue("other-ca", "rogue");
    expect(await tlsConnectOutcome(port, { ca: rogue.ca, cert: rogue.cert, key: rogue.key })).toBe("refused");
    expect(await tlsConnectOutcome(port, { ca: pki.caCert("cluster-ca") })).toBe("refused");
    expect(await plainConnectOutcome(port)).toBe("refused");

    await client.put("still", "serving");
    expect((await client.get("still"))?.toString()).toBe("serving");
    expect(cluster.isRunning(1)).toBe(true);
  });
});

/** "refused" if the node ends the connection (TLS alert or close) within 1.5 s, well before its 5 s handshake timeout. */
function tlsConnectOutcome(port: number, options: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<"refused" | "accepted"> {
  return connectOutcome(tls.connect({ host: "127.0.0.1", port, ...options, rejectUnauthorized: false }));
}

function plainConnectOutcome(port: number): Promise<"refused" | "accepted"> {
  const socket = net.connect(port, "127.0.0.1", () => socket.write(Buffer.from([0, 0, 0, 4, 1, 2, 3, 4])));
  return connectOutcome(socket);
}

function connectOutcome(socket: net.Socket): Promise<"refused" | "accepted"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("accepted");
    }, 1500);
    const refused = () => {
      clearTimeout(timer);
      resolve("refused");
    };
    socket.on("error", refused);
    socket.on("close", refused);
  });
}
