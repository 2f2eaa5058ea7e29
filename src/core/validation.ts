import { ValidationError } from "../errors.ts";
import type { MoveRequest } from "../types.ts";
import { s3ReportLocation, validateReportLocation } from "./report.ts";

const FIELDS = new Set(["from", "to", "prefix", "overwrite", "dryRun", "report"]);
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
// Reserved suffixes (-s3alias, --ol-s3, --x-s3) are left alone: access point aliases and directory buckets carry them.
const RESERVED_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"];

/**
 * Checks a move request (`{"from","to","prefix"?,"overwrite"?,"dryRun"?}`, as an object or JSON text) and returns it
 * with defaults, or throws ValidationError saying exactly what to fix.
 *
 * @example validateMoveRequest('{"from":"old","to":"new"}') // → { from: "old", to: "new", prefix: "", overwrite: true, dryRun: false }
 */
export function validateMoveRequest(
  input: unknown,
  allowedBuckets?: readonly string[],
  options: { allowFileReports?: boolean } = {},
): MoveRequest {
  const value = typeof input === "string" ? parseJson(input) : input;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError('Expected a JSON object like {"from":"old-bucket","to":"new-bucket"}');
  }
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) {
    throw new ValidationError(
      `Unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}; allowed: ${[...FIELDS].join(", ")}`,
    );
  }
  const from = bucketName(fields.from, "from");
  const to = bucketName(fields.to, "to");
  if (from === to) throw new ValidationError(`"from" and "to" are the same bucket ("${from}"): nothing to move`);
  const prefix = fields.prefix ?? "";
  if (typeof prefix !== "string") throw new ValidationError(`"prefix" must be a string, got ${typeof prefix}`);
  if (Buffer.byteLength(prefix) > 1024) throw new ValidationError(`"prefix" is longer than S3's 1,024-byte key limit`);
  const overwrite = optionalBoolean(fields.overwrite, "overwrite", true);
  const dryRun = optionalBoolean(fields.dryRun, "dryRun", false);
  const report = validateReportLocation(fields.report, options.allowFileReports === true);
  const s3Report = s3ReportLocation(report);
  const reportBucket = s3Report?.bucket;
  if (reportBucket) bucketName(reportBucket, "report");
  if (s3Report?.bucket === from && listingReachesReport(prefix, s3Report.prefix)) {
    // It would list the report's own parts, and move them (counted as keys) into the destination.
    throw new ValidationError(
      `"report" ${report} is where this job's listing of s3://${from}/${prefix} would reach its own report parts, ` +
        "and move them. Choose a location outside it, such as the destination bucket",
    );
  }
  if (allowedBuckets) {
    const checked = [["from", from], ["to", to], ...(reportBucket ? [["report", reportBucket]] : [])] as const;
    for (const [field, bucket] of checked) {
      if (!allowedBuckets.some((pattern) => matchesBucketPattern(bucket, pattern))) {
        throw new ValidationError(
          `"${field}" bucket "${bucket}" is not one this deployment may touch (${allowedBuckets.join(", ")}); ` +
            `redeploy with --param="buckets=..." including it`,
        );
      }
    }
  }
  return { from, to, prefix, overwrite, dryRun, ...(report ? { report } : {}) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(
      `Malformed JSON (${(error as Error).message}); expected {"from":"old-bucket","to":"new-bucket"}`,
    );
  }
}

/**
 * Whether a listing of `prefix` reaches report parts written under `reportPrefix`: they are named
 * `<reportPrefix><job id>/part-…`, job ids like 20261208-042312-1e4036. Either the report lies under the prefix,
 * or the prefix goes on from the report's into what could begin a job id.
 */
export function listingReachesReport(prefix: string, reportPrefix: string): boolean {
  if (reportPrefix.startsWith(prefix)) return true;
  if (!prefix.startsWith(reportPrefix)) return false;
  const rest = prefix.slice(reportPrefix.length);
  return /^(\d{0,8}|\d{8}-\d{0,6}|\d{8}-\d{6}-[0-9a-f]{0,6}|\d{8}-\d{6}-[0-9a-f]{6}\/.*)$/.test(rest);
}

/**
 * Why S3 would refuse to create a bucket of this name, though it has the right characters: formed like an IP
 * address, or under a prefix S3 reserves. Not refused here (a bucket made before a rule came may exist): said when
 * such a bucket is not found, so that "does not exist" is not all a user learns.
 */
export function refusedBucketName(name: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return "S3 does not allow bucket names formed like an IP address";
  const reserved = RESERVED_PREFIXES.find((prefix) => name.startsWith(prefix));
  return reserved ? `S3 reserves bucket names starting with "${reserved}"` : undefined;
}

/** A bucket name S3 accepts, or a ValidationError naming `field`. */
export function bucketName(value: unknown, field: string): string {
  if (value === undefined || value === null || value === "") {
    throw new ValidationError(
      `"${field}" is required: the name of the ${field === "from" ? "source" : "destination"} bucket`,
    );
  }
  if (typeof value !== "string")
    throw new ValidationError(`"${field}" must be a bucket name (a string), got ${typeof value}`);
  if (!BUCKET_NAME.test(value) || value.includes("..")) {
    throw new ValidationError(
      `"${field}" is not a valid S3 bucket name: "${value}" (3-63 characters: a-z, 0-9, ".", "-")`,
    );
  }
  return value;
}

function optionalBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean")
    throw new ValidationError(`"${field}" must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** S3 ARN-style wildcards: "*" any run of characters, "?" one character. */
export function matchesBucketPattern(bucket: string, pattern: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return regex.test(bucket);
}
