/**
 * storage/ stands on its own beside src/: it knows records, not Raft, so the only thing it
 * takes from src/ is the schema (src/proto). The core's RaftLogStorage is satisfied
 * structurally (see raft-storage.test.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const STORAGE = new URL("../../storage/", import.meta.url).pathname;
const IMPORT_PATTERN = /(?:import|export)[^;]*?from\s+"([^"]+)"/g;

describe("storage's imports", () => {
  it("take nothing from src/ but the schema (src/proto)", () => {
    const files = readdirSync(STORAGE, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(10);
    const outside: string[] = [];
    for (const name of files) {
      for (const [, target] of readFileSync(join(STORAGE, name), "utf8").matchAll(IMPORT_PATTERN)) {
        if (/(^|\/)src\//.test(target) && !/(^|\/)src\/proto\//.test(target)) outside.push(`storage/${name}: ${target}`);
      }
    }
    expect(outside).toEqual([]);
  });
});
