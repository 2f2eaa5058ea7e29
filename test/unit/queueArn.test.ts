import { describe, expect, it } from "vitest";
import { queueArnFromUrl } from "../../src/local/resources.ts";

describe("queueArnFromUrl", () => {
  it("reads the account and name from AWS, LocalStack and emulator URLs", () => {
    expect(queueArnFromUrl("https://sqs.eu-west-1.amazonaws.com/123456789012/s3-image-mover-move", "eu-west-1")).toBe(
      "arn:aws:sqs:eu-west-1:123456789012:s3-image-mover-move",
    );
    expect(queueArnFromUrl("http://localhost:4566/000000000000/list.fifo", "us-east-1")).toBe(
      "arn:aws:sqs:us-east-1:000000000000:list.fifo",
    );
    expect(queueArnFromUrl("http://127.0.0.1:4566/000000000000/moves-dlq", "us-east-1")).toBe(
      "arn:aws:sqs:us-east-1:000000000000:moves-dlq",
    );
  });

  it("names the partition of China and GovCloud regions", () => {
    expect(queueArnFromUrl("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1")).toBe(
      "arn:aws-cn:sqs:cn-north-1:123456789012:q",
    );
    expect(queueArnFromUrl("https://sqs.us-gov-west-1.amazonaws.com/123456789012/q", "us-gov-west-1")).toBe(
      "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q",
    );
  });

  it("gives up on any other shape, so the caller asks SQS instead", () => {
    expect(queueArnFromUrl("http://proxy:8080/sqs/000000000000/q", "us-east-1")).toBeUndefined();
    expect(queueArnFromUrl("http://localhost:4566/queue/q", "us-east-1")).toBeUndefined();
    expect(queueArnFromUrl("http://localhost:4566/000000000000/q?x=1", "us-east-1")).toBeUndefined();
  });
});
