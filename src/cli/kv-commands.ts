/**
 * `raftwal kv get|put|del|cas|list`: a client of the KV service (src/kv/client.ts), which
 * follows redirects to the leader and retries what it safely can.
 *
 * One rule for every kv command's exit code: 0 when it did what was asked; 5 (ABSENT)
 * when the key is absent and so nothing was done (`get`, `del`, a `cas` expecting a value),
 * with one line on stderr naming the key and KV_ERR_NOT_FOUND; 6 (MISMATCH) when a `cas`
 * found another value (printed); 1 on an error (no endpoint answered, a bad argument, a
 * refusal), with one line on stderr.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { KvErrorCode } from "../kv/errors.js";
import type { KvClient } from "../kv/client.js";
import { parseInteger } from "./arguments.js";
import { addClientOptions, withClient, type ClientFlags } from "./client-options.js";
import { CliError, ExitCode } from "./io.js";
import type { CliContext } from "./program.js";

/** Keys asked for per page by `kv list` (the API's default page size). */
const LIST_PAGE_KEYS = 1000;

const EXAMPLES = `
Examples:
  raftwal kv put greeting hello
  raftwal kv put photo --file ./photo.jpg
  echo -n '{"a":1}' | raftwal kv put config -
  raftwal kv get greeting                   # hello
  raftwal kv get greeting --stale           # from the answering node, no leadership check
  raftwal kv cas greeting hello hi          # OK, or MISMATCH (current: ...) and exit 6
  raftwal kv cas lock --absent me           # only if the key is absent
  raftwal kv del greeting
  raftwal kv list user/ --values            # keys starting with user/, in order
  raftwal kv --endpoints https://10.0.0.1:7101 --cacert ca.pem --token-file token get k

Exit codes: 0 done; 5 the key is absent (nothing done); 6 a cas found another value;
1 an error (one line on stderr).
`;

export function registerKvCommands(program: Command, context: CliContext): void {
  const kv = addClientOptions(program.command("kv").description("a client of the KV service: get, put, del, cas, list (follows redirects to the leader)")).addHelpText("after", EXAMPLES);
  const run = (action: (client: KvClient) => Promise<void>) => withClient(kv.opts() as ClientFlags, action);
  const absent = (key: string) => {
    context.io.stderr.write(`raftwal: no key ${JSON.stringify(key)} [${KvErrorCode.NOT_FOUND}]\n`);
    context.exitCode = ExitCode.ABSENT;
  };
  kv.command("get")
    .description("print a key's value (linearizable: it reflects every write acknowledged before)")
    .argument("<key>")
    .option("--stale", "read the answering node's state, without a leadership check")
    .action((key: string, options: { stale?: boolean }) =>
      run(async (client) => {
        const value = await client.get(key, { stale: options.stale });
        if (value === undefined) return absent(key);
        context.io.stdout.write(`${value.toString()}\n`);
      }),
    );
  kv.command("put")
    .description("set a key's value: given, read from a file (--file), or from stdin (-)")
    .argument("<key>")
    .argument("[value]", "the value, or - to read it from stdin")
    .option("--file <file>", "read the value from this file")
    .action(async (key: string, value: string | undefined, options: { file?: string }) => {
      const bytes = await valueOf(value, options.file, context);
      await run(async (client) => {
        await client.put(key, bytes);
        context.io.stdout.write("OK\n");
      });
    });
  kv.command("del")
    .description("delete a key (exit 5 if it was absent)")
    .argument("<key>")
    .action((key: string) =>
      run(async (client) => {
        if (await client.delete(key)) context.io.stdout.write("OK\n");
        else absent(key);
      }),
    );
  kv.command("cas")
    .description("compare-and-set: set <key> to <value> only if it holds <expect> (exit 6 with the current value if not)")
    .argument("<key>")
    .argument("<expect>", "the value the key must hold (ignored with --absent)")
    .argument("[value]", "the new value")
    .option("--absent", "succeed only if the key is absent: cas KEY --absent VALUE")
    .action((key: string, expect: string, value: string | undefined, options: { absent?: boolean }) => {
      // `cas KEY --absent VALUE`: the only value given is the new one.
      const newValue = options.absent && value === undefined ? expect : value;
      if (newValue === undefined) throw new CliError("cas needs <key> <expect> <value> (or <key> --absent <value>)");
      return run(async (client) => {
        const result = await client.cas(key, options.absent ? null : expect, newValue);
        if (result.ok) context.io.stdout.write("OK\n");
        else if (result.current === undefined) absent(key);
        else {
          context.io.stdout.write(`MISMATCH (current: ${JSON.stringify(result.current)})\n`);
          context.exitCode = ExitCode.MISMATCH;
        }
      });
    });
  registerList(kv, context, run);
}

function registerList(kv: Command, context: CliContext, run: (action: (client: KvClient) => Promise<void>) => Promise<void>): void {
  kv.command("list")
    .description("the keys starting with a prefix, in order (every key without one); linearizable unless --stale")
    .argument("[prefix]", "only keys starting with it", "")
    .option("--values", "print each value after its key, separated by a tab (base64:... for a value that is not UTF-8)")
    .option("--limit <n>", "at most this many keys", parseInteger(1, Number.MAX_SAFE_INTEGER))
    .option("--stale", "read the answering node's state, without a leadership check")
    .option("--json", "one JSON object per key: {key, value} (or valueBase64)")
    .action((prefix: string, options: { values?: boolean; limit?: number; stale?: boolean; json?: boolean }) =>
      run(async (client) => {
        let left = options.limit ?? Number.POSITIVE_INFINITY;
        let token: string | undefined;
        // Bounded by the number of keys (each page moves past the last key it returned) and by --limit.
        while (left > 0) {
          const page = await client.list(prefix, { limit: Math.min(left, LIST_PAGE_KEYS), continue: token, keysOnly: !options.values && !options.json, stale: options.stale });
          for (const item of page.keys) context.io.stdout.write(`${formatListed(item, options)}\n`);
          left -= page.keys.length;
          if (!page.more || page.continue === undefined) break;
          token = page.continue;
        }
      }),
    );
}

function formatListed(item: { key: string; value?: string; valueBase64?: string }, options: { values?: boolean; json?: boolean }): string {
  if (options.json) return JSON.stringify(item);
  if (!options.values) return item.key;
  return `${item.key}\t${item.value ?? `base64:${item.valueBase64}`}`;
}

/** The value of `kv put`: the argument, a file (--file), or stdin (-); exactly one of them. */
async function valueOf(value: string | undefined, file: string | undefined, context: CliContext): Promise<Uint8Array> {
  if (file !== undefined && value !== undefined) throw new CliError("give the value or --file, not both");
  if (file !== undefined) {
    try {
      return await readFile(file);
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (value === undefined) throw new CliError("put needs a value: put <key> <value>, put <key> - (stdin) or put <key> --file <file>");
  if (value !== "-") return Buffer.from(value);
  const chunks: Buffer[] = [];
  for await (const chunk of context.io.stdin ?? process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
