#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 24 strips types natively (no build step).
import { main } from "../src/cli/main.ts";

await main();
// Exit once the command is done rather than when the last idle long poll (up to 1 s) returns:
// anything such a poll receives now is released by SQS after the short local visibility timeout.
process.exit();
