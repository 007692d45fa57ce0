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

/**
 * The positive number given as `name N` (a whole number when `integer`), or `fallback` when
 * the option is absent; anything else is refused with the usage, as handleUsage does.
 */
export function numberOption(usage: string, name: string, fallback: number, integer = false): number {
  const args = process.argv.slice(2);
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    process.stderr.write(`${name} needs a positive ${integer ? "whole " : ""}number\n\n${usage}`);
    process.exit(1);
  }
  return value;
}
