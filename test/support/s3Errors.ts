/** An S3 error answer, as the proxy returns it in place of the emulator's. */
export const s3Error = (status: number, code: string) => ({
  status,
  headers: { "content-type": "application/xml" },
  body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} (injected)</Message></Error>`,
});
