/**
 * What a newcomer reads first: `--version`, the `--help` of each command (defaults shown
 * once and in the units they are typed in, every subcommand described, examples for the
 * operator commands), and the benchmarks' `--help` (usage, nothing measured).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { raftwal } from "./helpers.js";

const ROOT = new URL("../..", import.meta.url).pathname;

const cli = (...argv: string[]) => raftwal(argv);

describe("raftwal --version and --help", () => {
  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) expect(await cli(flag)).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  it("cluster --help shows each default once", async () => {
    const help = (await cli("cluster", "--help")).stdout.replace(/\s+/g, " ");
    expect(help).toContain("first peer port; APIs listen 100 above (default: 7001) --snapshot-every");
    expect(help).not.toMatch(/\(default 7001\)/);
    expect(help).toMatch(/--wal-segment-bytes <n> [^-]*\(default: 4194304 \(4 MiB\)\)/);
    expect(help).toContain("Examples:");
  });

  it("torture --help shows the duration and nemesis defaults as they are typed", async () => {
    const help = (await cli("torture", "--help")).stdout.replace(/\s+/g, " ");
    expect(help).toContain("(default: 60s)");
    expect(help).toContain("(default: all)");
    expect(help).not.toContain("60000");
    expect(help).not.toContain('["kill"');
  });

  it("every kv subcommand has a description, and the group has examples and its exit codes", async () => {
    const help = (await cli("kv", "--help")).stdout;
    for (const name of ["get", "put", "del", "cas", "list"]) {
      const line = help.split("\n").find((l) => new RegExp(`^  ${name}\\b`).test(l));
      expect(line, name).toBeDefined();
      expect(line!.replace(/^\s+\S+(\s+\[?<?[^\s]*)*?\s{2,}/, "").trim().length, line).toBeGreaterThan(10);
    }
    expect(help).toContain("Examples:");
    expect(help).toMatch(/Exit codes: 0 done; 5 the key is absent/);
  });

  it("the operator commands are listed and each has examples", async () => {
    const top = (await cli("--help")).stdout;
    for (const name of ["status", "endpoint", "leader", "snapshot", "member", "kv"]) expect(top).toMatch(new RegExp(`\\n  ${name}\\b`));
    for (const argv of [["status"], ["endpoint", "status"], ["leader", "transfer"], ["snapshot"], ["member"], ["node"]]) {
      expect((await cli(...argv, "--help")).stdout, argv.join(" ")).toContain("Examples:");
    }
  });
});

describe("the benchmarks' --help", () => {
  it("prints the usage and exits 0 without measuring; an unknown option exits 1 with the usage", () => {
    for (const bench of ["wal", "wal-cpu", "core", "transport", "cluster", "restart", "membership", "rollover", "catchup", "catchup-tail"]) {
      const started = Date.now();
      const help = spawnSync(process.execPath, [`${ROOT}/dist/bench/${bench}.js`, "--help"], { encoding: "utf8", timeout: 20_000 });
      expect(help.status, bench).toBe(0);
      expect(help.stdout, bench).toMatch(new RegExp(`^Usage: npm run bench:${bench}`));
      // Not a measurement: no results table, and far quicker than any run.
      expect(help.stdout).not.toMatch(/ops\/s|entries\/s \|/);
      expect(Date.now() - started).toBeLessThan(15_000);
      const unknown = spawnSync(process.execPath, [`${ROOT}/dist/bench/${bench}.js`, "--bogus"], { encoding: "utf8", timeout: 20_000 });
      expect(unknown.status, bench).toBe(1);
      expect(unknown.stderr).toMatch(/^unknown option --bogus\n\nUsage:/);
    }
  });

  it("wal-targets (run alone, outside npm scripts) has the same usage checks, and refuses a row or variant it does not know", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [`${ROOT}/dist/bench/wal-targets.js`, ...args], { encoding: "utf8", timeout: 20_000 });
    const help = run("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: node dist\/bench\/wal-targets\.js/);
    expect(help.stdout).toContain("1k256");
    expect(help.stdout).not.toMatch(/entries\/s \|/);
    const refusals: Array<[string[], RegExp]> = [
      [["--bogus"], /^unknown option --bogus\n\nUsage:/],
      [["--rounds", "many"], /^--rounds needs a positive whole number\n\nUsage:/],
      [["--slice", "0"], /^--slice needs a positive number\n\nUsage:/],
      [["--rows", "1k256,2k7"], /^--rows: no row named 2k7\n\nUsage:/],
      [["--variant", "sparse={preallocation"], /^--variant sparse: not JSON \(.*\)\n\nUsage:/],
      [["--variant", "nameless"], /^--variant needs NAME=JSON\n\nUsage:/],
      [["--json"], /^--json needs a file name\n\nUsage:/],
      [["--json", "--rows", "1k256"], /^--json needs a file name\n\nUsage:/],
      [["--rows", " "], /^--rows needs row names, comma-separated\n\nUsage:/],
    ];
    for (const [args, message] of refusals) {
      const refused = run(...args);
      expect(refused.status, args.join(" ")).toBe(1);
      expect(refused.stderr, args.join(" ")).toMatch(message);
    }
  });

  it("a numeric option with a value that is not a positive number exits 1 with the usage", () => {
    for (const [bench, option] of [["cluster", "--seconds"], ["restart", "--keys"], ["rollover", "--segment-bytes"], ["catchup", "--snapshot-every"], ["catchup-tail", "--tail"]]) {
      const bad = spawnSync(process.execPath, [`${ROOT}/dist/bench/${bench}.js`, option, "many"], { encoding: "utf8", timeout: 20_000 });
      expect(bad.status, bench).toBe(1);
      expect(bad.stderr, bench).toMatch(new RegExp(`^${option} needs a positive (whole )?number\\n\\nUsage: npm run bench:${bench}`));
    }
  });
});
