/**
 * The README's embedding example, run as printed: the test takes the code block from
 * README.md (the one after "This example is run by `test/node/readme-example.test.ts`"),
 * compiles it with TypeScript, and runs it with Node in an empty directory where
 * `import ... from "raftwal"` resolves to this package (its build in dist/). The one change
 * is the peer port: the example's `port: 7001` becomes a free port, so that a cluster
 * running on 7001 on this machine cannot make the test fail. The README and the test
 * therefore cannot drift apart.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { expect, it } from "vitest";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const MARKER = "This example is run by `test/node/readme-example.test.ts`";
const PRINTED_PORT = "port: 7001";

/** The first ```ts block after the marker. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const marker = readme.indexOf(MARKER);
  expect(marker, "the README names this test above its example").toBeGreaterThanOrEqual(0);
  const start = readme.indexOf("```ts\n", marker);
  const end = readme.indexOf("\n```\n", start);
  expect(start).toBeGreaterThan(marker);
  return readme.slice(start + "```ts\n".length, end + 1);
}

function run(file: string, cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

it("the README's embedding example runs as printed", async () => {
  const source = await readmeExample();
  expect(source.split(PRINTED_PORT).length - 1, `the example names its peer port once, as "${PRINTED_PORT}"`).toBe(1);
  const port = await findFreeBasePort(1);
  const compiled = ts.transpileModule(source.replace(PRINTED_PORT, `port: ${port}`), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const dir = await mkdtemp(join(tmpdir(), "raftwal-readme-"));
  try {
    // `import ... from "raftwal"` finds this package, as it would in an application's node_modules.
    await mkdir(join(dir, "node_modules"));
    await symlink(ROOT, join(dir, "node_modules", "raftwal"), "dir");
    await writeFile(join(dir, "example.mjs"), compiled);
    const result = await run("example.mjs", dir, 30_000);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    // console.log(result, counter.value, node.status())
    expect(result.stdout).toMatch(/^5 5 \{/);
    expect(result.stdout).toMatch(/role: 'leader'/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
