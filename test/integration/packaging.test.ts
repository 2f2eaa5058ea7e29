// `serverless package` offline, then the CloudFormation template and the bundles it produced, checked for what
// the deployment promises: DLQs, encryption, visibility timeouts, partial batch responses, least-privilege IAM,
// and bundles that load and run on their own.
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import AdmZip from "adm-zip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/emulator.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SERVERLESS = join(ROOT, "node_modules/osls/bin/serverless.js");
const FUNCTIONS = ["start", "lister", "mover", "redrive", "status"] as const;
const KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const PACKAGE_TIMEOUT_MS = 90_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Packaged {
  dir: string;
  template: Template;
}

let workDir: string;
let emulator: Emulator;
/** Stage dev without params: what `serverless package` gives a deployer who named no buckets. */
let devDefault: Packaged;
/** Stage dev with --param buckets and kmsKeyArn. */
let devScoped: Packaged;
/** Stage local: serverless-localstack active. */
let local: Packaged;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "s3im-package-"));
  // serverless-localstack (stage local) points every AWS client at EDGE_PORT. `package` makes no call there today;
  // should a version ever do, this emulator answers, not whatever holds port 4566 on the machine.
  emulator = await startEmulator({ port: 0 });
  // Three packages at once, each from its own copy of the service: serverless-esbuild and the framework keep their
  // intermediate files in <service>/.esbuild and <service>/.serverless whatever --package says, so two packages of
  // one directory at the same time take each other's files.
  [devDefault, devScoped, local] = await Promise.all([
    packageStage("dev-default", ["--stage", "dev"]),
    packageStage("dev-scoped", ["--stage", "dev", "--param=buckets=alpha,beta-*", `--param=kmsKeyArn=${KMS_KEY}`]),
    packageStage("local", ["--stage", "local"], { EDGE_PORT: String(emulator.port) }),
  ]);
}, 150_000);

afterAll(async () => {
  await emulator?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("serverless package (offline, no AWS credentials)", () => {
  it("writes one zip per function for both stages", async () => {
    for (const packaged of [devDefault, devScoped, local]) {
      for (const name of FUNCTIONS) {
        const entries = new AdmZip(join(packaged.dir, `${name}.zip`)).getEntries().map((e) => e.entryName);
        // A self-contained bundle and its source map: no node_modules shipped.
        expect(entries.sort()).toEqual([`src/handlers/${name}.mjs`, `src/handlers/${name}.mjs.map`]);
      }
    }
  });

  for (const stage of ["dev", "local"] as const) {
    describe(`stage ${stage}`, () => {
      const template = () => (stage === "dev" ? devScoped : local).template;

      it("runs every function on nodejs24.x, arm64, with 14-day log retention", () => {
        const functions = resourcesOfType(template(), "AWS::Lambda::Function");
        expect(Object.keys(functions).sort()).toEqual(
          FUNCTIONS.map((f) => `${f[0]?.toUpperCase()}${f.slice(1)}LambdaFunction`).sort(),
        );
        for (const fn of Object.values(functions)) {
          expect(fn.Properties.Runtime).toBe("nodejs24.x");
          expect(fn.Properties.Architectures).toEqual(["arm64"]);
        }
        const logGroups = Object.values(resourcesOfType(template(), "AWS::Logs::LogGroup"));
        expect(logGroups).toHaveLength(FUNCTIONS.length);
        for (const group of logGroups) expect(group.Properties.RetentionInDays).toBe(14);
      });

      it("gives every queue a DLQ (except the DLQs), 14-day DLQ retention and SSE", () => {
        const queues = resourcesOfType(template(), "AWS::SQS::Queue");
        const deadLetterQueues = new Set(
          Object.values(queues).flatMap((q) => {
            const target = (q.Properties.RedrivePolicy as JsonObject | undefined)?.deadLetterTargetArn;
            return target === undefined ? [] : [getAttTarget(target)];
          }),
        );
        expect(deadLetterQueues.size).toBeGreaterThan(0);
        for (const [id, queue] of Object.entries(queues)) {
          const encrypted =
            queue.Properties.SqsManagedSseEnabled === true || queue.Properties.KmsMasterKeyId !== undefined;
          expect(encrypted, `${id} is encrypted at rest`).toBe(true);
          if (deadLetterQueues.has(id)) {
            expect(queue.Properties.RedrivePolicy, `${id} is a DLQ`).toBeUndefined();
            expect(queue.Properties.MessageRetentionPeriod, `${id} keeps dead letters 14 days`).toBe(1_209_600);
          } else {
            const redrive = queue.Properties.RedrivePolicy as JsonObject | undefined;
            expect(redrive, `${id} has a redrive policy`).toBeDefined();
            expect(queues[getAttTarget(redrive?.deadLetterTargetArn)], `${id}'s DLQ is in the stack`).toBeDefined();
            expect(redrive?.maxReceiveCount).toBeGreaterThan(1);
          }
        }
      });

      it("consumes every queue with partial batch responses, capped concurrency, and a visibility timeout ≥ 6 × timeout + window", () => {
        const t = template();
        const mappings = Object.values(resourcesOfType(t, "AWS::Lambda::EventSourceMapping"));
        expect(mappings.map((m) => getAttTarget(m.Properties.EventSourceArn)).sort()).toEqual([
          "ListQueue",
          "MoveQueue",
        ]);
        for (const mapping of mappings) {
          const queueId = getAttTarget(mapping.Properties.EventSourceArn);
          const fn = t.Resources[getAttTarget(mapping.Properties.FunctionName)];
          const queue = t.Resources[queueId];
          expect(mapping.Properties.FunctionResponseTypes, queueId).toContain("ReportBatchItemFailures");
          expect(
            (mapping.Properties.ScalingConfig as JsonObject | undefined)?.MaximumConcurrency,
            queueId,
          ).toBeGreaterThanOrEqual(2);
          const timeout = Number(fn?.Properties.Timeout);
          const window = Number(mapping.Properties.MaximumBatchingWindowInSeconds ?? 0);
          expect(timeout, `${queueId} consumer timeout`).toBeGreaterThan(0);
          // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
          expect(Number(queue?.Properties.VisibilityTimeout), `${queueId} visibility timeout`).toBeGreaterThanOrEqual(
            6 * timeout + window,
          );
        }
      });

      it('grants S3 and SQS only on named resources, never Resource "*"', () => {
        const statements = policyStatements(template());
        const s3OrSqs = statements.filter((s) => s.actions.some((a) => /^(s3|sqs):/i.test(a)));
        expect(s3OrSqs.length).toBeGreaterThan(0);
        for (const statement of s3OrSqs) {
          expect(statement.resources, statement.actions.join(",")).not.toContain("*");
          for (const resource of statement.resources) expect(resource).not.toMatch(/^arn:aws:s3:::\*(\/\*)?$/);
          expect(statement.actions).not.toContain("s3:*");
          expect(statement.actions).not.toContain("sqs:*");
        }
        expect(statements.flatMap((s) => s.actions)).not.toContain("s3:DeleteObjectVersion");
        // Functions talk through SQS, never by invoking each other.
        expect(statements.flatMap((s) => s.actions).filter((a) => a.startsWith("lambda:"))).toEqual([]);
      });

      it("keeps nothing billable after `serverless remove`: the table and queues are deleted with the stack", () => {
        for (const id of ["JobsTable", "ListQueue", "ListDeadLetterQueue", "MoveQueue", "MoveDeadLetterQueue"]) {
          expect(template().Resources[id]?.DeletionPolicy, id).toBe("Delete");
        }
        expect(template().Resources.JobsTable?.Properties.BillingMode).toBe("PAY_PER_REQUEST");
      });
    });
  }

  it("scopes S3 to the buckets param: list on bucket ARNs, object actions on object ARNs", () => {
    const statements = policyStatements(devScoped.template);
    const listing = statements.filter((s) => s.actions.includes("s3:ListBucket"));
    const objects = statements.filter((s) => s.actions.includes("s3:GetObject"));
    expect(listing).toHaveLength(1);
    expect(objects).toHaveLength(1);
    expect(listing[0]?.resources).toEqual(["arn:aws:s3:::alpha", "arn:aws:s3:::beta-*"]);
    expect(objects[0]?.resources).toEqual(["arn:aws:s3:::alpha/*", "arn:aws:s3:::beta-*/*"]);
    expect(objects[0]?.actions.sort()).toEqual(
      [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectTagging",
      ].sort(),
    );
    // `start` refuses buckets outside the same list.
    for (const fn of Object.values(resourcesOfType(devScoped.template, "AWS::Lambda::Function"))) {
      const variables = (fn.Properties.Environment as JsonObject).Variables as JsonObject;
      expect(evaluate(devScoped.template, variables.ALLOWED_BUCKETS ?? null)).toBe("alpha,beta-*");
    }
  });

  it("defaults stage local to the demo buckets", () => {
    const listing = policyStatements(local.template).filter((s) => s.actions.includes("s3:ListBucket"));
    expect(listing[0]?.resources).toEqual(["arn:aws:s3:::demo-*"]);
  });

  it("packages without a buckets param, and CloudFormation would refuse to deploy it", () => {
    const parameter = devDefault.template.Parameters?.AllowedBuckets as JsonObject;
    expect(parameter.Default).toBe("");
    // No bucket at all in the policy...
    const s3Resources = policyStatements(devDefault.template)
      .filter((s) => s.actions.some((a) => a.startsWith("s3:")))
      .flatMap((s) => s.resources);
    expect(s3Resources.every((r) => r === "arn:aws:s3:::" || r === "arn:aws:s3:::/*")).toBe(true);
    // ...and the parameter's own default fails its AllowedPattern, which CloudFormation checks before creating anything.
    const pattern = new RegExp(String(parameter.AllowedPattern));
    expect(pattern.test(String(parameter.Default))).toBe(false);
    expect(String(parameter.ConstraintDescription)).toContain('--param="buckets=');
    for (const good of ["alpha", "alpha,beta-*", "demo-*", "photos.example.com", "logs-20??"])
      expect(pattern.test(good), good).toBe(true);
    for (const bad of ["", "*", "*,alpha", "alpha,", "alpha,,beta", "alpha, beta", "Alpha", "arn:aws:s3:::alpha"]) {
      expect(pattern.test(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it("grants KMS on the given key only, and not at all without one", () => {
    const statementsWith = policyStatements(devScoped.template).filter((s) =>
      s.actions.some((a) => a.startsWith("kms:")),
    );
    expect(statementsWith).toEqual([
      { actions: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], resources: [KMS_KEY] },
    ]);
    expect(policyStatements(devDefault.template).filter((s) => s.actions.some((a) => a.startsWith("kms:")))).toEqual(
      [],
    );
  });
});

describe("bundled handlers, loaded from the packaged zips", () => {
  let bundles: string;
  let results: Record<(typeof FUNCTIONS)[number], HandlerRun>;

  beforeAll(async () => {
    bundles = join(workDir, "unzipped");
    for (const name of FUNCTIONS)
      new AdmZip(join(devScoped.dir, `${name}.zip`)).extractAllTo(join(bundles, name), true);
    const closedPort = await freePort(); // nothing listens: any AWS call would fail on this machine, never leave it
    const runs = await Promise.all(
      FUNCTIONS.map((name) => runBundle(join(bundles, name, `src/handlers/${name}.mjs`), closedPort, CALLS[name])),
    );
    results = Object.fromEntries(FUNCTIONS.map((name, i) => [name, runs[i]])) as typeof results;
  }, 60_000);

  it("start rejects a move onto the same bucket, and a bucket outside ALLOWED_BUCKETS", () => {
    expect(results.start.outcomes[0]).toMatchObject({
      error: { name: "ValidationError", message: expect.stringContaining("same bucket") },
    });
    expect(results.start.outcomes[1]).toMatchObject({
      error: { name: "ValidationError", message: expect.stringContaining("not one this deployment may touch") },
    });
  });

  it("lister and mover name the malformed record in batchItemFailures", () => {
    for (const name of ["lister", "mover"] as const) {
      expect(results[name].outcomes[0], name).toEqual({
        value: { batchItemFailures: [{ itemIdentifier: "malformed-1" }] },
      });
    }
  });

  it("status and redrive reject a job id that is not a string", () => {
    for (const name of ["status", "redrive"] as const) {
      expect(results[name].outcomes[0], name).toMatchObject({ error: { name: "ValidationError" } });
    }
  });
});

// ---- packaging ----

/** The files `serverless package` reads; node_modules is linked, not copied. */
const SERVICE_FILES = ["serverless.yml", "package.json", "tsconfig.json", "src"];

async function packageStage(label: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Packaged> {
  const service = join(workDir, label, "service");
  const dir = join(workDir, label, "package");
  const home = join(workDir, label, "home");
  await mkdir(home, { recursive: true });
  for (const file of SERVICE_FILES) await cp(join(ROOT, file), join(service, file), { recursive: true });
  await symlink(join(ROOT, "node_modules"), join(service, "node_modules"), "dir");
  const env: Record<string, string> = {
    // Only what the framework needs: no AWS credentials, profile, region or CA bundle from this machine.
    PATH: process.env.PATH ?? "",
    HOME: home,
    TMPDIR: tmpdir(),
    SLS_TELEMETRY_DISABLED: "1",
    SLS_NOTIFICATIONS_MODE: "off",
    ...extraEnv,
  };
  const { code, output } = await run(process.execPath, [SERVERLESS, "package", "--package", dir, ...args], {
    cwd: service,
    env,
    timeoutMs: PACKAGE_TIMEOUT_MS,
  });
  if (code !== 0) throw new Error(`serverless package ${args.join(" ")} exited with ${code}:\n${output}`);
  const template = JSON.parse(
    await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8"),
  ) as Template;
  return { dir, template };
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number | null; output: string }> {
  const { cwd, env, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.slice(0, 4).join(" ")} did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

// ---- running a bundle in a fresh process ----

interface HandlerRun {
  outcomes: Array<{ value: unknown } | { error: { name: string; message: string } }>;
}

const sqsRecord = (messageId: string, body: string) => ({
  messageId,
  receiptHandle: `${messageId}-receipt`,
  body,
  attributes: {
    ApproximateReceiveCount: "1",
    SentTimestamp: "0",
    SenderId: "test",
    ApproximateFirstReceiveTimestamp: "0",
  },
  messageAttributes: {},
  md5OfBody: "",
  eventSource: "aws:sqs",
  eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:test",
  awsRegion: "us-east-1",
});

/** The events each bundle gets; none of them may need the network. */
const CALLS: Record<(typeof FUNCTIONS)[number], unknown[]> = {
  start: [
    { from: "same", to: "same" },
    { from: "alpha", to: "gamma" },
  ],
  lister: [{ Records: [sqsRecord("malformed-1", "{not json")] }],
  mover: [{ Records: [sqsRecord("malformed-1", '{"job":')] }],
  status: [{ job: 5 }],
  redrive: [{ job: 5 }],
};

// Imports the bundle in a fresh process, as a cold start would, then calls its handler with each event in turn and
// prints the outcomes as JSON. (docs/DEPLOY.md times the same import.)
const RUNNER = `
const [file, events] = [process.argv[1], JSON.parse(process.argv[2])];
const { handler } = await import(file);
const context = { functionName: "test", awsRequestId: "test", getRemainingTimeInMillis: () => 60000 };
const outcomes = [];
for (const event of events) {
  try { outcomes.push({ value: await handler(event, context) }); }
  catch (error) { outcomes.push({ error: { name: error.name, message: error.message } }); }
}
process.stdout.write("\\n" + JSON.stringify({ outcomes }) + "\\n");
process.exit(0);
`;

async function runBundle(file: string, closedPort: number, events: unknown[]): Promise<HandlerRun> {
  const nowhere = `http://127.0.0.1:${closedPort}`;
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: workDir,
    // As on Lambda (serverless.yml), with dummies for the stack's resources.
    NODE_OPTIONS: "--enable-source-maps",
    TABLE_NAME: "jobs",
    LIST_QUEUE_URL: `${nowhere}/000000000000/list.fifo`,
    MOVE_QUEUE_URL: `${nowhere}/000000000000/move`,
    LIST_DLQ_URL: `${nowhere}/000000000000/list-dlq.fifo`,
    MOVE_DLQ_URL: `${nowhere}/000000000000/move-dlq`,
    ALLOWED_BUCKETS: "alpha,beta-*",
    AWS_ENDPOINT_URL: nowhere,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_EC2_METADATA_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "CRITICAL",
  };
  const { code, output } = await run(
    process.execPath,
    ["--input-type=module", "-e", RUNNER, pathToFileURL(file).href, JSON.stringify(events)],
    { cwd: workDir, env, timeoutMs: 30_000 },
  );
  const last = output.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{")) throw new Error(`${file} exited with ${code}:\n${output}`);
  return JSON.parse(last) as HandlerRun;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

// ---- reading the template ----

interface Resource {
  Type: string;
  Properties: JsonObject;
  DeletionPolicy?: string;
  Condition?: string;
}

interface Template {
  Parameters?: JsonObject;
  Conditions?: JsonObject;
  Resources: Record<string, Resource>;
}

function resourcesOfType(template: Template, type: string): Record<string, Resource> {
  return Object.fromEntries(Object.entries(template.Resources).filter(([, r]) => r.Type === type));
}

/** The logical id a `{"Fn::GetAtt": [id, "Arn"]}` points at. */
function getAttTarget(value: Json | undefined): string {
  const getAtt = (value as JsonObject | undefined)?.["Fn::GetAtt"];
  if (!Array.isArray(getAtt) || typeof getAtt[0] !== "string")
    throw new Error(`Expected Fn::GetAtt, got ${JSON.stringify(value)}`);
  return getAtt[0];
}

/**
 * Every statement that would be in force once deployed (the role's inline policies, and IAM::Policy resources whose
 * condition holds), with actions as a list and resources evaluated to strings: GetAtt becomes "<id>.Arn".
 */
function policyStatements(template: Template): Array<{ actions: string[]; resources: string[] }> {
  const documents: Json[] = [];
  for (const resource of Object.values(template.Resources)) {
    if (resource.Condition && evaluate(template, template.Conditions?.[resource.Condition] ?? null) !== true) continue;
    if (resource.Type === "AWS::IAM::Role") {
      for (const policy of (resource.Properties.Policies as JsonObject[] | undefined) ?? [])
        documents.push(policy.PolicyDocument ?? null);
    }
    if (resource.Type === "AWS::IAM::Policy") documents.push(resource.Properties.PolicyDocument ?? null);
  }
  return documents.flatMap((doc) =>
    ((doc as JsonObject).Statement as JsonObject[]).map((statement) => ({
      actions: [statement.Action ?? []].flat().map(String),
      resources: [evaluate(template, statement.Resource ?? null)].flat().map(String),
    })),
  );
}

/** Just enough of CloudFormation's intrinsic functions for this template, with parameters at their defaults. */
function evaluate(template: Template, node: Json): Json {
  if (Array.isArray(node)) return node.map((item) => evaluate(template, item));
  if (node === null || typeof node !== "object") return node;
  const [fn, arg] = Object.entries(node)[0] ?? [];
  switch (fn) {
    case "Ref": {
      const parameter = template.Parameters?.[String(arg)] as JsonObject | undefined;
      if (parameter) return parameter.Default ?? null;
      if (arg === "AWS::Partition") return "aws";
      return `${arg}.Ref`;
    }
    case "Fn::GetAtt":
      return (arg as string[]).join(".");
    case "Fn::Join": {
      const [separator, items] = arg as [string, Json];
      return (evaluate(template, items) as Json[]).map((item) => evaluate(template, item)).join(separator);
    }
    case "Fn::Split": {
      const [separator, text] = arg as [string, Json];
      return String(evaluate(template, text)).split(separator);
    }
    case "Fn::Equals": {
      const [a, b] = (arg as Json[]).map((x) => evaluate(template, x));
      return a === b;
    }
    case "Fn::Not":
      return !evaluate(template, (arg as Json[])[0] ?? null);
    default:
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, evaluate(template, v)]));
  }
}
