/**
 * The `raftwal` command line, as a function: `runCli(argv, io)` parses `argv` (without
 * the node and script paths), runs the command and resolves with the exit code. Output
 * goes only to `io.stdout` / `io.stderr`, so tests call it in-process.
 *
 * Errors end the command with one line on stderr (`raftwal: <message>`) and a non-zero
 * exit code, never a stack trace (set RAFTWAL_DEBUG=1 to get one for a bug report).
 *
 * Subcommand groups register here, one module each: `wal` (wal-commands.ts); `node`,
 * `cluster`, `kv` (node-commands.ts, cluster-command.ts, kv-commands.ts); `member`
 * (member-commands.ts); `status` and `endpoint status` (status-command.ts); `leader`
 * (leader-command.ts); `snapshot` (snapshot-commands.ts); `torture` (torture-command.ts).
 *
 * `wal dump` shows the entries of the KV service as commands: its payload decoder is
 * registered here, once, when the CLI loads (payload-decoders.ts).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { RaftwalError } from "../errors.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { CliError, ExitCode, type CliIo } from "./io.js";
import { registerMemberCommands } from "./member-commands.js";
import { registerNodeCommands } from "./node-commands.js";
import { registerWalCommands } from "./wal-commands.js";
import { registerTortureCommand } from "./torture-command.js";
import { registerStatusCommand } from "./status-command.js";
import { registerLeaderCommand } from "./leader-command.js";
import { registerSnapshotCommands } from "./snapshot-commands.js";
import { describeKvPayload } from "./kv-payload-decoder.js";
import { registerPayloadDecoder } from "./payload-decoders.js";

registerPayloadDecoder("kv", describeKvPayload);

/**
 * This package's version, from its package.json: two folders up from src/cli (sources, as
 * tests run them) or three from dist/src/cli (the build).
 */
function packageVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (manifest.name === "raftwal" && manifest.version) return manifest.version;
    } catch {
      // not there: try the next folder up
    }
  }
  return "unknown";
}

/** The state one run shares between the program and its commands. */
export interface CliContext {
  io: Required<CliIo>;
  /** Set by a command that finishes with a non-zero code without throwing. */
  exitCode: number;
}

function buildProgram(context: CliContext): Command {
  const program = new Command("raftwal")
    .description("Raft consensus for Node.js with its own write-ahead-log storage engine")
    .version(packageVersion(), "-V, --version", "print raftwal's version")
    .exitOverride()
    .showSuggestionAfterError(false)
    .configureOutput({
      writeOut: (text) => context.io.stdout.write(text),
      writeErr: (text) => context.io.stderr.write(text),
      outputError: (text, write) => write(`raftwal: ${text.replace(/^error: /, "").trimEnd().split("\n")[0]}\n`),
    });
  registerWalCommands(program, context);
  registerNodeCommands(program, context);
  registerMemberCommands(program, context);
  registerStatusCommand(program, context);
  registerLeaderCommand(program, context);
  registerSnapshotCommands(program, context);
  registerTortureCommand(program, context);
  return program;
}

function describeError(error: unknown): string {
  if (error instanceof RaftwalError) return `${error.message} [${error.code}]`;
  const errno = error as NodeJS.ErrnoException;
  if (errno?.code && errno.path) return `${errno.path}: ${errno.code} (${errno.message})`;
  return (error as Error)?.message ?? String(error);
}

/** Runs the CLI with `argv` (user arguments only) and resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const context: CliContext = { io: { stdout: io.stdout, stderr: io.stderr, stdin: io.stdin ?? process.stdin, fs: io.fs ?? new NodeFileSystem(), onNodeServing: io.onNodeServing ?? (() => undefined) }, exitCode: ExitCode.OK };
  const program = buildProgram(context);
  try {
    await program.parseAsync(argv, { from: "user" });
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version output are successes; everything else was already printed as one line.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.ERROR;
    }
    const exitCode = error instanceof CliError ? error.exitCode : ExitCode.ERROR;
    context.io.stderr.write(`raftwal: ${describeError(error).split("\n")[0]}\n`);
    if (process.env.RAFTWAL_DEBUG) context.io.stderr.write(`${(error as Error)?.stack ?? ""}\n`);
    return exitCode;
  }
}
