/**
 * The KV API over TLS, with client certificates and a bearer token, driven by real TLS
 * clients (Node's https and tls modules, KvClient, and `raftwal kv` / `raftwal status`
 * through runCli): what gets through and what is refused, redirects to the leader over
 * https, and the refusal to send a token in clear text.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { runCli } from "../../src/cli/program.js";
import { KvClient, KvError } from "../../src/kv/client.js";
import { startKvNode, type KvNode } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { startInProcessCluster } from "../cli/helpers.js";
import { createTestPki, type Pem, type TestPki } from "../transport/certificates.js";

const TOKEN = "s3cret-token";
let pki: TestPki;
let server: Pem;
let alice: Pem;
let nodes: KvNode[] = [];
let dir: string;

beforeAll(async () => {
  pki = createTestPki();
  server = pki.issue("api-ca", "node-api");
  alice = pki.issue("client-ca", "alice");
  dir = await mkdtemp(join(tmpdir(), "raftwal-api-tls-"));
  nodes = await startInProcessCluster(2, { clusterId: "api-tls", apiTls: { cert: server.cert, key: server.key, clientCa: alice.ca }, apiToken: TOKEN });
});

afterAll(async () => {
  for (const node of nodes) await node.close();
  await rm(dir, { recursive: true, force: true });
  pki?.remove();
});

const url = (node: KvNode) => `https://127.0.0.1:${node.apiAddress.port}`;
const follower = () => nodes.find((node) => node.node.status().role !== "leader")!;

/** GET over https with the given client options; the status and JSON body, or the error. */
function httpsGet(node: KvNode, path: string, options: https.RequestOptions): Promise<{ status: number; body: Record<string, unknown>; headers: http.IncomingHttpHeaders } | Error> {
  return new Promise((resolve) => {
    const request = https.request({ host: "127.0.0.1", port: node.apiAddress.port, path, method: "GET", ...options }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || "{}") as Record<string, unknown>, headers: response.headers }));
    });
    request.on("error", (error) => resolve(error));
    request.end();
  });
}

describe("the KV API over TLS with client certificates and a bearer token", () => {
  it("serves a client with the CA, a client certificate and the token, redirecting over https to the leader", async () => {
    const client = new KvClient({ endpoints: [url(follower())], tls: { ca: server.ca, cert: alice.cert, key: alice.key }, token: TOKEN });
    try {
      await client.put("secret", "kept");
      expect((await client.get("secret"))?.toString()).toBe("kept");
      expect((await client.list("sec")).keys).toEqual([{ key: "secret", value: "kept" }]);
    } finally {
      client.close();
    }
  });

  it("answers 401 KV_ERR_UNAUTHORIZED without the token or with a wrong one", async () => {
    const withCert = { ca: server.ca, cert: alice.cert, key: alice.key };
    const none = await httpsGet(nodes[0], "/status", withCert);
    expect(none).toMatchObject({ status: 401, body: { error: "KV_ERR_UNAUTHORIZED" }, headers: { "www-authenticate": 'Bearer realm="raftwal"' } });
    const wrong = await httpsGet(nodes[0], "/kv/secret", { ...withCert, headers: { authorization: "Bearer guess" } });
    expect(wrong).toMatchObject({ status: 401, body: { error: "KV_ERR_UNAUTHORIZED" } });
    const right = await httpsGet(nodes[0], "/status", { ...withCert, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(right).toMatchObject({ status: 200, body: { clusterId: "api-tls" } });
    const client = new KvClient({ endpoints: [url(nodes[0])], tls: withCert, operationTimeoutMs: 2000 });
    try {
      expect(await client.get("secret").catch((error: unknown) => error)).toMatchObject({ status: 401, code: "KV_ERR_UNAUTHORIZED" });
      expect(await client.get("secret").catch((error: unknown) => error)).toBeInstanceOf(KvError);
    } finally {
      client.close();
    }
  });

  it("refuses, during the TLS handshake, a client without a certificate or with one from another CA, and a server certificate it does not trust", async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    expect(await httpsGet(nodes[0], "/status", { ca: server.ca, headers })).toBeInstanceOf(Error);
    const mallory = pki.issue("other-ca", "mallory");
    expect(await httpsGet(nodes[0], "/status", { ca: server.ca, cert: mallory.cert, key: mallory.key, headers })).toBeInstanceOf(Error);
    expect(await httpsGet(nodes[0], "/status", { ca: mallory.ca, cert: alice.cert, key: alice.key, headers })).toBeInstanceOf(Error);
    // Not TLS at all: the server does not answer HTTP.
    const plain = await new Promise<number | Error>((resolve) => {
      http.get({ host: "127.0.0.1", port: nodes[0].apiAddress.port, path: "/status", headers }, (response) => resolve(response.statusCode ?? 0)).on("error", resolve);
    });
    expect(plain).toBeInstanceOf(Error);
    // Control: the same TLS client with its certificate gets through.
    const socket = tls.connect({ host: "127.0.0.1", port: nodes[0].apiAddress.port, ca: server.ca, cert: alice.cert, key: alice.key });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    expect(socket.authorized).toBe(true);
    socket.destroy();
  });

  it("raftwal kv and raftwal status take --cacert, --cert, --key and --token-file", async () => {
    const files = { ca: join(dir, "ca.pem"), cert: join(dir, "alice.pem"), key: join(dir, "alice.key"), token: join(dir, "token") };
    await writeFile(files.ca, server.ca);
    await writeFile(files.cert, alice.cert);
    await writeFile(files.key, alice.key);
    await writeFile(files.token, `${TOKEN}\n`);
    const flags = ["--endpoints", nodes.map(url).join(","), "--cacert", files.ca, "--cert", files.cert, "--key", files.key, "--token-file", files.token];
    let stdout = "";
    const io = { stdout: { write: (text: string) => ((stdout += text), true) }, stderr: { write: () => true } };
    expect(await runCli(["kv", ...flags, "put", "via-cli", "yes"], io)).toBe(0);
    expect(await runCli(["kv", ...flags, "get", "via-cli"], io)).toBe(0);
    expect(stdout).toBe("OK\nyes\n");
    stdout = "";
    expect(await runCli(["status", ...flags, "--json"], io)).toBe(0);
    const status = JSON.parse(stdout) as { members: Array<{ health: string }> };
    expect(status.members.map((member) => member.health)).toEqual(["healthy", "healthy"]);
    stdout = "";
    expect(await runCli(["kv", ...flags.slice(0, -2), "get", "via-cli"], io)).toBe(1);
  });
});

describe("a bearer token over plain HTTP", () => {
  const start = async (host: string, allowInsecureToken?: boolean) => {
    const port = await findFreeBasePort(1);
    return startKvNode({
      id: 1,
      clusterId: "token",
      initialClusterState: "new",
      peers: [{ id: 1, host: "127.0.0.1", port, api: { host, port: port + 100 } }],
      dataDir: "/data/node-1",
      storage: { fs: new MemoryFileSystem() },
      tickMs: 10,
      logger: silentLogger,
      apiToken: TOKEN,
      apiAllowInsecureToken: allowInsecureToken,
    });
  };

  it("is refused on an address other than loopback unless allowed, and accepted on loopback", async () => {
    const refused = await start("0.0.0.0").catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT", message: expect.stringContaining("would travel in clear text") });
    for (const node of [await start("0.0.0.0", true), await start("127.0.0.1")]) {
      const client = new KvClient({ endpoints: [`http://127.0.0.1:${node.apiAddress.port}`], token: TOKEN });
      try {
        await client.put("k", "v");
        expect((await client.get("k"))?.toString()).toBe("v");
      } finally {
        client.close();
        await node.close();
      }
    }
  });
});
