/**
 * `--help` for a benchmark: the usage, printed before anything is measured (a benchmark
 * takes minutes; `--help` must not start one). An option the benchmark does not know is
 * refused the same way, instead of being ignored.
 */
export function handleUsage(usage: string, knownOptions: readonly string[]): void {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const unknown = args.filter((arg) => arg.startsWith("-") && !knownOptions.includes(arg));
  if (unknown.length > 0) {
    process.stderr.write(`unknown option ${unknown.join(", ")}\n\n${usage}`);
    process.exit(1);
  }
}
