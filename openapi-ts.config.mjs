// `make client-ts`: the TypeScript client of the bundle's OpenAPI document (docs/API.md).
// OPENAPI (a URL or a file) and CLIENT_TS (the output folder) come from the Makefile.
import { defineConfig } from "@hey-api/openapi-ts";

export default defineConfig({
  input: process.env.OPENAPI,
  output: process.env.CLIENT_TS,
  plugins: [
    "@hey-api/client-fetch",
    "zod",
    // Every answer is checked against its generated zod schema before it is returned (not the
    // requests: zod sees an upload as a string, where the client sends a Blob).
    { name: "@hey-api/sdk", validator: { request: false, response: "zod" } },
  ],
});
