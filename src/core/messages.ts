import { ValidationError } from "../errors.ts";
import type { ListCursor, ListedObject, ListMessage, MoveMessage } from "../types.ts";

// SQS bodies reject XML-invalid characters (U+FFFE, lone surrogates, most controls) that S3 keys may hold:
// keys travel as base64url. https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
export const encodeKey = (key: string): string => Buffer.from(key, "utf8").toString("base64url");
export const decodeKey = (encoded: string): string => Buffer.from(encoded, "base64url").toString("utf8");

/** The move message for one batch of a page; item positions are the ledger's. */
export function buildMoveMessage(
  job: { id: string; from: string; to: string; overwrite: boolean; report?: string | undefined },
  page: number,
  batch: number,
  objects: ReadonlyArray<{ i: number; object: ListedObject }>,
): MoveMessage {
  return {
    job: job.id,
    from: job.from,
    to: job.to,
    overwrite: job.overwrite,
    page,
    batch,
    ...(job.report ? { report: job.report } : {}),
    items: objects.map(({ i, object }) => ({
      i,
      k: encodeKey(object.k),
      e: object.e,
      s: object.s,
      ...(object.c ? { c: object.c } : {}),
    })),
  };
}

/** Parses a move message body, or says what is wrong with it. */
export function parseMoveMessage(body: string): MoveMessage {
  const value = parseJson(body, "move message");
  if (
    typeof value.job !== "string" ||
    typeof value.from !== "string" ||
    typeof value.to !== "string" ||
    typeof value.page !== "number" ||
    typeof value.batch !== "number" ||
    !Array.isArray(value.items)
  ) {
    throw new ValidationError(`Not a move message: ${body.slice(0, 200)}`);
  }
  return value as unknown as MoveMessage;
}

export function parseListMessage(body: string): ListMessage {
  const value = parseJson(body, "list message");
  if (typeof value.job !== "string") throw new ValidationError(`Not a list message: ${body.slice(0, 200)}`);
  const cursor = value.cursor as Partial<ListCursor> | undefined;
  const usable =
    typeof cursor?.from === "string" &&
    typeof cursor.seq === "number" &&
    typeof cursor.startAfter === "string" &&
    typeof cursor.prefix === "string";
  if (!usable) return { job: value.job };
  const { from, prefix, seq, startAfter, continuationToken } = cursor as ListCursor;
  const token = typeof continuationToken === "string" && continuationToken !== "" ? { continuationToken } : {};
  return { job: value.job, cursor: { from, prefix, seq, startAfter, ...token } };
}

/**
 * A list message's body without its cursor's continuation token, for redrive: a token that failed its listing may be
 * the cause, and the cursor's start key lists the same keys. Bodies that are not list messages are returned unchanged.
 */
export function withoutContinuationToken(body: string): string {
  try {
    const value: unknown = JSON.parse(body);
    const cursor = (value as { cursor?: unknown } | null)?.cursor;
    if (!cursor || typeof cursor !== "object" || !("continuationToken" in cursor)) return body;
    const { continuationToken: _dropped, ...rest } = cursor as Record<string, unknown>;
    return JSON.stringify({ ...(value as object), cursor: rest });
  } catch {
    return body;
  }
}

function parseJson(body: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new ValidationError(`Malformed ${what}: ${body.slice(0, 200)}`);
}

/** The batch cut to the given items, without the failure reasons a redriven message carried. */
export function onlyItems(message: MoveMessage, keep: ReadonlyArray<{ i: number }>): MoveMessage {
  const positions = new Set(keep.map((k) => k.i));
  const { reasons: _lastFailures, ...batch } = message;
  return { ...batch, items: message.items.filter((item) => positions.has(item.i)) };
}

/**
 * Poison keys leave their batch: one DLQ message holding only them and why they failed, marked so that a redrive
 * retries them (their ledger outcome is "failed" until then).
 */
export function deadLetterMessage(
  message: MoveMessage,
  failed: ReadonlyArray<{ i: number; reason: string }>,
): MoveMessage {
  return {
    ...onlyItems(message, failed),
    retryFailed: true,
    reasons: Object.fromEntries(failed.map((f) => [String(f.i), f.reason])),
  };
}
