import { InvalidArgumentError } from "commander";

// Option parsers shared by the CLI and the bench: a bad value fails with a message naming the option.

export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}, got "${value}"`);
    return n;
  };
}

export function wholeNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be 0 or a positive integer, got "${value}"`);
    return n;
  };
}

export function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`must be a port (0-65535), got "${value}"`);
  return n;
}
