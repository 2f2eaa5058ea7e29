// The tools the benchmark times, each as the command a user would type, pointed at the latency proxy.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const TOOL_NAMES = [
  "ours",
  "ceiling",
  "bare-move",
  "rclone-tuned",
  "rclone-defaults",
  "aws-defaults",
  "aws-64",
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** What a run must leave behind: a move empties the source; the ceiling only copies. */
export type Outcome = "moved" | "copied";

export interface RunContext {
  /** The proxy: every tool talks to S3 and SQS (and ours to DynamoDB) through it. */
  endpoint: string;
  from: string;
  to: string;
  /** "key<TAB>etag" per seeded object, for the ceiling. */
  manifestPath: string;
  /** A directory for per-run config files. */
  tmpDir: string;
}

export interface ToolCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Where it runs: the run's temporary directory, so files a tool writes (ours: its report) leave no trace. */
  cwd: string;
}

export interface Tool {
  name: ToolName;
  /** The command, as a reader of the results table should picture it. */
  describe: string;
  outcome: Outcome;
  command(context: RunContext): ToolCommand;
}

export interface ToolBinaries {
  /** Debian's aws-cli v2 (the pyenv `aws` shim on these machines is v1). */
  aws: string;
  rclone: string;
  /** Passed to ours as --concurrency when set; its default (256) otherwise. */
  ourConcurrency?: number | undefined;
  ceilingConcurrency: number;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUR_BIN = join(ROOT, "bin", "s3-image-mover.js");
const CEILING = join(ROOT, "bench", "ceiling.ts");

/** Dummy credentials and a fixed region for every tool; nothing of the caller's AWS setup leaks in. */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    // AWS_CA_BUNDLE makes rclone fail on http endpoints ("unable to load custom CA bundle"): unset for all, alike.
    if (name.startsWith("AWS_") || name.startsWith("RCLONE_")) delete env[name];
  }
  return {
    ...env,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
    ...extra,
  };
}

export function buildTools(binaries: ToolBinaries): Record<ToolName, Tool> {
  const rclone = (name: ToolName, flags: string[]): Tool => ({
    name,
    describe: `rclone move x:SRC x:DST${flags.length ? ` ${flags.join(" ")}` : ""}`,
    outcome: "moved",
    command: (context) => {
      const config = join(context.tmpDir, "rclone.conf");
      writeFileSync(config, ""); // the remote comes from the environment; no user config is read
      return {
        file: binaries.rclone,
        cwd: context.tmpDir,
        args: ["move", `x:${context.from}`, `x:${context.to}`, ...flags],
        env: toolEnv({
          RCLONE_CONFIG: config,
          RCLONE_CONFIG_X_TYPE: "s3",
          RCLONE_CONFIG_X_PROVIDER: "Other",
          RCLONE_CONFIG_X_ENDPOINT: context.endpoint,
          RCLONE_CONFIG_X_FORCE_PATH_STYLE: "true",
          RCLONE_CONFIG_X_ACCESS_KEY_ID: "test",
          RCLONE_CONFIG_X_SECRET_ACCESS_KEY: "test",
          RCLONE_CONFIG_X_REGION: "us-east-1",
        }),
      };
    },
  });
  const aws = (name: ToolName, s3Settings: string[]): Tool => ({
    name,
    describe: `aws s3 mv s3://SRC s3://DST --recursive${s3Settings.length ? ` (config: s3 = ${s3Settings.join(", ")})` : ""}`,
    outcome: "moved",
    command: (context) => {
      const config = join(context.tmpDir, "aws-config");
      const credentials = join(context.tmpDir, "aws-credentials");
      const s3Block = s3Settings.length ? `s3 =\n${s3Settings.map((line) => `    ${line}\n`).join("")}` : "";
      writeFileSync(config, `[default]\nregion = us-east-1\n${s3Block}`);
      writeFileSync(credentials, "");
      return {
        file: binaries.aws,
        cwd: context.tmpDir,
        args: [
          "s3",
          "mv",
          `s3://${context.from}`,
          `s3://${context.to}`,
          "--recursive",
          "--endpoint-url",
          context.endpoint,
        ],
        env: toolEnv({ AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_PAGER: "" }),
      };
    },
  });
  const ourFlags = binaries.ourConcurrency ? ["--concurrency", String(binaries.ourConcurrency)] : [];
  return {
    ours: {
      name: "ours",
      describe: `s3-image-mover move --from SRC --to DST --quiet${ourFlags.length ? ` ${ourFlags.join(" ")}` : ""}`,
      outcome: "moved",
      command: (context) => ({
        file: process.execPath,
        cwd: context.tmpDir,
        args: [
          OUR_BIN,
          "move",
          "--from",
          context.from,
          "--to",
          context.to,
          "--endpoint",
          context.endpoint,
          "--quiet",
          ...ourFlags,
        ],
        // POWERTOOLS_LOG_LEVEL passes through (toolEnv keeps non-AWS variables), e.g. INFO to watch the phases.
        env: toolEnv(),
      }),
    },
    ceiling: {
      name: "ceiling",
      describe: `bench/ceiling.ts: CopyObject only, ${binaries.ceilingConcurrency} in flight (lean SigV4 client)`,
      outcome: "copied",
      command: (context) => ({
        file: process.execPath,
        cwd: context.tmpDir,
        args: [
          CEILING,
          ...["--endpoint", context.endpoint, "--from", context.from, "--to", context.to],
          ...["--manifest", context.manifestPath, "--concurrency", String(binaries.ceilingConcurrency)],
        ],
        env: toolEnv(),
      }),
    },
    "bare-move": {
      name: "bare-move",
      describe: `bench/ceiling.ts --move: list, CopyObject (${binaries.ceilingConcurrency} in flight), DeleteObjects per page; nothing else`,
      outcome: "moved",
      command: (context) => ({
        file: process.execPath,
        cwd: context.tmpDir,
        args: [
          CEILING,
          "--move",
          ...["--endpoint", context.endpoint, "--from", context.from, "--to", context.to],
          ...["--concurrency", String(binaries.ceilingConcurrency)],
        ],
        env: toolEnv(),
      }),
    },
    "rclone-tuned": rclone("rclone-tuned", ["--transfers", "256", "--checkers", "256"]),
    "rclone-defaults": rclone("rclone-defaults", []),
    "aws-defaults": aws("aws-defaults", []),
    "aws-64": aws("aws-64", ["max_concurrent_requests = 64"]),
  };
}

export interface Availability {
  ok: boolean;
  /** The version line when installed, else why the tool is skipped and how to install it. */
  detail: string;
}

/** Whether a peer is installed: its version line, or how to install it. */
export function checkAvailability(tool: ToolName, binaries: ToolBinaries): Availability {
  if (tool === "ours" || tool === "ceiling" || tool === "bare-move")
    return { ok: true, detail: `node ${process.version}` };
  const [file, args, pkg] = tool.startsWith("rclone")
    ? [binaries.rclone, ["version"], "rclone"]
    : [binaries.aws, ["--version"], "awscli"];
  const probe = spawnSync(file, args, { encoding: "utf8", env: toolEnv(), timeout: 30_000 });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : `exit code ${probe.status}`;
    return { ok: false, detail: `${file} not usable (${why}); install it with: sudo apt-get install -y ${pkg}` };
  }
  const version = `${probe.stdout}${probe.stderr}`.trim().split("\n")[0] ?? "";
  return { ok: true, detail: version };
}
