/**
 * Test certificates, generated at test time with the `openssl` command line into a
 * temporary directory that the test removes. No key material is ever committed.
 *
 * Node's crypto module can make keys but not X.509 certificates, so `openssl` is
 * required (it ships with Debian and most CI images); without it the TLS tests fail
 * with a message saying so.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Pem {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface TestPki {
  dir: string;
  /** Issues a certificate for `name` (subjectAltName IP:127.0.0.1) signed by CA `caName`. */
  issue(caName: string, name: string): Pem;
  caCert(caName: string): Buffer;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new Error("the TLS tests need the `openssl` command (Debian: apt-get install openssl)");
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "raftwal-tls-"));
  const cas = new Set<string>();
  const ensureCa = (caName: string) => {
    if (cas.has(caName)) return;
    openssl(dir, ["req", "-x509", ...EC_KEY, "-keyout", `${caName}.key`, "-out", `${caName}.crt`, "-subj", `/CN=${caName}`, "-days", "2"]);
    cas.add(caName);
  };
  writeFileSync(
    join(dir, "leaf.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n",
  );
  return {
    dir,
    caCert(caName) {
      ensureCa(caName);
      return readFileSync(join(dir, `${caName}.crt`));
    },
    issue(caName, name) {
      ensureCa(caName);
      openssl(dir, ["req", ...EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
      openssl(dir, [
        "x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`,
        "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", "leaf.ext",
      ]);
      return {
        ca: readFileSync(join(dir, `${caName}.crt`)),
        cert: readFileSync(join(dir, `${name}.crt`)),
        key: readFileSync(join(dir, `${name}.key`)),
      };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
