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
  if (unknown.length > 0) refuseArguments(usage, `unknown option ${unknown.join(", ")}`);
}

/** Exits 1 saying `why`, then the usage: a bad argument must not start a run of minutes. */
export function refuseArguments(usage: string, why: string): never {
  process.stderr.write(`${why}\n\n${usage}`);
  process.exit(1);
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
  if (!(value > 0) || (integer && !Number.isInteger(value))) refuseArguments(usage, `${name} needs a positive ${integer ? "whole " : ""}number`);
  return value;
}

/**
 * The word given as `name WORD`, or undefined when the option is absent; a missing or blank
 * word, or another option in its place, is refused with the usage ("`name` needs `what`").
 */
export function stringOption(usage: string, name: string, what: string): string | undefined {
  const args = process.argv.slice(2);
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.trim() === "" || value.startsWith("--")) refuseArguments(usage, `${name} needs ${what}`);
  return value;
}
