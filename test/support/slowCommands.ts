import type { SQSClient } from "@aws-sdk/client-sqs";

/** Answers every `commandName` (e.g. "DeleteMessageBatchCommand") the client sends `ms` late, then calls `answered`. */
export function answerLate(sqs: SQSClient, commandName: string, ms: number, answered: () => void = () => undefined) {
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName) return next(args);
      await new Promise((resolve) => setTimeout(resolve, ms));
      const out = await next(args);
      answered();
      return out;
    },
    { step: "initialize", name: `answerLate${commandName}` },
  );
}
