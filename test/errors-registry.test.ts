/**
 * The error registry (src/errors.ts) is the one list of codes: the README's Errors
 * section must show exactly its rows, and no code may appear anywhere in the source
 * tree (code, comments, docs) without being registered.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, type RegisteredErrorCode } from "../src/errors.js";

const ROOT = new URL("..", import.meta.url).pathname;
/** A code: a layer prefix, `_ERR_`, a name. */
const CODE_PATTERN = /\b[A-Z][A-Z0-9]*_ERR_[A-Z0-9_]*[A-Z0-9]\b/g;
const SOURCE_FOLDERS = ["src", "storage", "bench", "test"];

function readmeErrorsSection(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Errors\n");
  expect(start, "README.md has an Errors section").toBeGreaterThanOrEqual(0);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

function tableRow(entry: RegisteredErrorCode): string {
  return `| \`${entry.code}\` | ${entry.layer} | ${entry.meaning} |`;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|md|proto)$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

describe("the error registry", () => {
  const registered = new Set<string>(ERROR_CODES.map((entry) => entry.code));

  it("registers every code once, with a one-line meaning", () => {
    expect(registered.size).toBe(ERROR_CODES.length);
    for (const entry of ERROR_CODES) {
      expect(entry.code).toMatch(CODE_PATTERN);
      expect(entry.meaning, entry.code).toMatch(/^[A-Z`].*[.)]$/);
      expect(entry.meaning, entry.code).not.toMatch(/[|\n]/);
    }
  });

  it("the README's Errors table shows exactly the registry's rows, in its order", () => {
    const rows = readmeErrorsSection()
      .split("\n")
      .filter((line) => /^\| `/.test(line));
    const expected = ERROR_CODES.map(tableRow);
    expect(rows, `the README's Errors table should read:\n\n| code | layer | meaning |\n| --- | --- | --- |\n${expected.join("\n")}\n`).toEqual(expected);
  });

  it("every code the README names is registered", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const unknown = [...new Set(readme.match(CODE_PATTERN) ?? [])].filter((code) => !registered.has(code));
    expect(unknown).toEqual([]);
  });

  it("every code in the source tree (code, comments, docs) is registered", () => {
    const unknown: string[] = [];
    for (const folder of SOURCE_FOLDERS) {
      for (const file of sourceFiles(folder)) {
        for (const code of readFileSync(file, "utf8").match(CODE_PATTERN) ?? []) {
          if (!registered.has(code)) unknown.push(`${file.slice(ROOT.length)}: ${code}`);
        }
      }
    }
    expect(unknown).toEqual([]);
  });
});
