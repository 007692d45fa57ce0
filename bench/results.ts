/**
 * Where benchmarks write their machine-readable results: bench/results/<name>.json in
 * the repository, whether the benchmark runs compiled (dist/bench/) or from source.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function resultsDirectory(): string {
  const here = import.meta.url.replace("/dist/bench/", "/bench/");
  return fileURLToPath(new URL("./results/", here));
}

/** Writes `data` as pretty JSON to bench/results/<name>.json and returns the path. */
export function writeResults(name: string, data: unknown): string {
  const directory = resultsDirectory();
  mkdirSync(directory, { recursive: true });
  const path = `${directory}${name}.json`;
  writeFileSync(path, JSON.stringify(data, null, 2) + "\n");
  return path;
}
