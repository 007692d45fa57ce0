/**
 * The `raftwal` command line for an embedding application's own binary (the public
 * `runCli`): it loads the CLI (commander and every command) only when first run, so
 * importing the library does not. With `registerPayloadDecoder` (payload-decoders.ts),
 * `wal dump` then shows the application's entries in its own terms.
 */
import type { CliIo } from "./io.js";

/** Runs `raftwal <argv...>` in this process and resolves with its exit code (see program.ts). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = await import("./program.js");
  return program.runCli(argv, io);
}
