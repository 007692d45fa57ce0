#!/usr/bin/env -S node --initial-old-space-size=128
/** The `raftwal` binary: a thin shell around runCli (program.ts), which tests call in-process. */
import { runCli } from "./program.js";
import { tuneV8Tiering } from "./v8-tiering.js";

// `raftwal wal dump DIR | head`: the reader went away; stop quietly instead of a stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

// V8 optimizes sooner once a node serves, not while it starts (v8-tiering.ts says why).
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, onNodeServing: tuneV8Tiering });
