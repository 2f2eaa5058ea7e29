import { describe, expect, it } from "vitest";
import { matchesBucketPattern, validateMoveRequest } from "../../src/core/validation.ts";
import { ValidationError } from "../../src/errors.ts";

describe("validateMoveRequest", () => {
  it("accepts an object or JSON text and fills in defaults", () => {
    expect(validateMoveRequest({ from: "old", to: "new" })).toEqual({
      from: "old",
      to: "new",
      prefix: "",
      overwrite: true,
      dryRun: false,
    });
    expect(validateMoveRequest('{"from":"old","to":"new","prefix":"2024/","overwrite":false}')).toMatchObject({
      prefix: "2024/",
      overwrite: false,
    });
  });

  it.each([
    ["malformed JSON", '{"from":"old",', /Malformed JSON/],
    ["not an object", "[1,2]", /Expected a JSON object/],
    ["missing from", { to: "new" }, /"from" is required/],
    ["missing to", { from: "old" }, /"to" is required/],
    ["same bucket", { from: "same", to: "same" }, /same bucket/],
    ["invalid bucket name", { from: "Old_Bucket", to: "new" }, /not a valid S3 bucket name/],
    ["a bucket named like an IP address", { from: "192.168.1.1", to: "new" }, /"192\.168\.1\.1" is formed like an IP/],
    ["a reserved xn-- bucket name", { from: "old", to: "xn--abc" }, /S3 reserves names starting with "xn--"/],
    ["a reserved sthree- bucket name", { from: "sthree-x", to: "new" }, /S3 reserves names starting with "sthree-"/],
    [
      "a report bucket S3 would refuse",
      { from: "old", to: "new", report: "s3://10.0.0.1/r/" },
      /"report" is not a valid S3 bucket name: "10\.0\.0\.1" is formed like an IP address/,
    ],
    ["non-string prefix", { from: "old", to: "new", prefix: 5 }, /"prefix" must be a string/],
    ["unknown field", { from: "old", to: "new", form: "x" }, /Unknown field\(s\) "form"/],
    ["non-boolean option", { from: "old", to: "new", dryRun: "yes" }, /"dryRun" must be true or false/],
  ])("rejects %s with a clear message", (_name, input, message) => {
    expect(() => validateMoveRequest(input)).toThrow(ValidationError);
    expect(() => validateMoveRequest(input)).toThrow(message);
  });

  it("accepts names that only look reserved: a directory bucket, an access point alias, dotted numbers", () => {
    for (const name of [
      "photos--use1-az4--x-s3",
      "my-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias",
      "1.2.3",
      "x-xn--a",
    ]) {
      expect(validateMoveRequest({ from: name, to: "new" }).from).toBe(name);
    }
  });

  it("rejects buckets outside the deployment's list, and accepts wildcards", () => {
    expect(() => validateMoveRequest({ from: "old", to: "other" }, ["old", "new"])).toThrow(
      /"to" bucket "other" is not one/,
    );
    expect(() => validateMoveRequest({ from: "other", to: "new" }, ["old", "new"])).toThrow(
      /"from" bucket "other" is not one/,
    );
    expect(() =>
      validateMoveRequest({ from: "old", to: "new", report: "s3://other/reports/" }, ["old", "new"]),
    ).toThrow(/"report" bucket "other" is not one/);
    expect(validateMoveRequest({ from: "old", to: "new", report: "s3://new/reports/" }, ["old", "new"]).report).toBe(
      "s3://new/reports/",
    );
    expect(validateMoveRequest({ from: "photos-2024", to: "archive" }, ["photos-*", "archive"]).from).toBe(
      "photos-2024",
    );
  });
});

describe("matchesBucketPattern", () => {
  it("treats * and ? as wildcards and everything else literally", () => {
    expect(matchesBucketPattern("photos-1", "photos-?")).toBe(true);
    expect(matchesBucketPattern("photos.x", "photos.x")).toBe(true);
    expect(matchesBucketPattern("photosax", "photos.x")).toBe(false);
    expect(matchesBucketPattern("any", "*")).toBe(true);
  });
});
