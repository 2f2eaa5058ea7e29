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
 * A failed key's reason as kept in its ledger and dead letter: enough to act on, short enough that a whole batch of
 * them fits a ledger item (DynamoDB's 400 KB) and a few SQS messages.
 */
export function shortReason(reason: string): string {
  return reason.length > 200 ? `${reason.slice(0, 200)}…` : reason;
}

/**
 * Poison keys leave their batch: DLQ messages holding only them and why they failed, marked so that a redrive
 * retries them (their ledger outcome is "failed" until then). A whole batch failing (access denied to a prefix)
 * with long reasons would not fit one SQS message, so the letters are cut to at most `maxBytes` each.
 */
export function deadLetterMessages(
  message: MoveMessage,
  failed: ReadonlyArray<{ i: number; reason: string }>,
  maxBytes: number,
): MoveMessage[] {
  const letter = (part: ReadonlyArray<{ i: number; reason: string }>): MoveMessage => {
    // A new letter: not the redriven one its keys came from (that id is settled by its own message, or held open
    // by the part of it requeued), which a later redrive would otherwise take for this letter's and drop.
    const { redrive: _settledElsewhere, ...rest } = onlyItems(message, part);
    return { ...rest, retryFailed: true, reasons: Object.fromEntries(part.map((f) => [String(f.i), f.reason])) };
  };
  const items = new Map(message.items.map((item) => [item.i, item]));
  const base = Buffer.byteLength(JSON.stringify(letter([])));
  const letters: MoveMessage[] = [];
  let part: Array<{ i: number; reason: string }> = [];
  let bytes = base;
  for (const f of failed) {
    const reason = shortReason(f.reason);
    // The item, its reason and their JSON punctuation.
    const size =
      Buffer.byteLength(JSON.stringify(items.get(f.i) ?? {})) + Buffer.byteLength(JSON.stringify(reason)) + 16;
    if (part.length > 0 && bytes + size > maxBytes) {
      letters.push(letter(part));
      part = [];
      bytes = base;
    }
    part.push({ i: f.i, reason });
    bytes += size;
  }
  if (part.length > 0) letters.push(letter(part));
  return letters;
}
