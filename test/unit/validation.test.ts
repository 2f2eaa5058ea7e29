import { describe, expect, it } from "vitest";
import { matchesBucketPattern, refusedBucketName, validateMoveRequest } from "../../src/core/validation.ts";
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
    [
      "a report inside the source",
      { from: "old", to: "new", report: "s3://old/reports/" },
      /"report" s3:\/\/old\/reports\/ is where this job's listing of s3:\/\/old\/ would reach its own report parts/,
    ],
    [
      "a report whose parts the prefix moved would reach",
      { from: "old", to: "new", prefix: "r/2026", report: "s3://old/r/" },
      /would reach its own report parts/,
    ],
    [
      "a report bucket name with two dots in a row",
      { from: "old", to: "new", report: "s3://my..bucket/r/" },
      /"report" is not a valid S3 bucket name/,
    ],
    ["non-string prefix", { from: "old", to: "new", prefix: 5 }, /"prefix" must be a string/],
    ["unknown field", { from: "old", to: "new", form: "x" }, /Unknown field\(s\) "form"/],
    ["non-boolean option", { from: "old", to: "new", dryRun: "yes" }, /"dryRun" must be true or false/],
  ])("rejects %s with a clear message", (_name, input, message) => {
    expect(() => validateMoveRequest(input)).toThrow(ValidationError);
    expect(() => validateMoveRequest(input)).toThrow(message);
  });

  it("accepts names S3 no longer creates (a bucket made before the rule may exist), and names that only look so", () => {
    for (const name of [
      "192.168.1.1",
      "xn--abc",
      "sthree-x",
      "photos--use1-az4--x-s3",
      "my-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias",
      "1.2.3",
      "x-xn--a",
    ]) {
      expect(validateMoveRequest({ from: name, to: "new" }).from).toBe(name);
    }
  });

  it("takes a report in the source bucket where the listing cannot reach its parts, or in the destination", () => {
    // Parts go under <report prefix><job id>/: a prefix going on from the report's with other than a job id misses them.
    for (const [prefix, report] of [
      ["photos/", "s3://old/"],
      ["archive/2024/", "s3://old/archive/"],
      ["photos/", "s3://old/reports/"],
    ] as const) {
      expect(validateMoveRequest({ from: "old", to: "new", prefix, report }).report).toBe(report);
    }
    expect(validateMoveRequest({ from: "old", to: "new", report: "s3://new/reports/" }).report).toBe(
      "s3://new/reports/",
    );
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

describe("refusedBucketName", () => {
  it("says why S3 would refuse to create a name: an IP address's form, or a reserved prefix", () => {
    expect(refusedBucketName("192.168.1.1")).toBe("S3 does not allow bucket names formed like an IP address");
    expect(refusedBucketName("xn--abc")).toBe('S3 reserves bucket names starting with "xn--"');
    expect(refusedBucketName("sthree-x")).toBe('S3 reserves bucket names starting with "sthree-"');
    expect(refusedBucketName("amzn-s3-demo-bucket")).toBe('S3 reserves bucket names starting with "amzn-s3-demo-"');
    for (const name of ["photos--use1-az4--x-s3", "1.2.3", "x-xn--a", "old"])
      expect(refusedBucketName(name)).toBe(undefined);
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
