// Calls every endpoint of a running bundle through the TypeScript client that `make client-ts`
// generated into ./typescript, as a TypeScript user would: compiled by tsc in strict mode
// (the generated types must fit the calls and the fields read here), run by Node. The SDK
// checks each 200 body against its generated zod schema; error bodies are parsed here with
// the generated zod schema of Error. Prints one JSON object of what came back.
// Usage: node typescript_client.js BASE_URL INPUTS_JSON (tests/test_openapi.py writes both).
import { readFileSync } from "node:fs";

import { client } from "./typescript/client.gen";
import {
  classifyIris,
  classifyMask,
  classifyMasks,
  healthz,
  livez,
  metrics,
  models,
  predictCredit,
  predictCreditBatch,
  rateBook,
  rateBooks,
  readyz,
  recommendBooks,
} from "./typescript/sdk.gen";
import type {
  BookPair,
  CreditFeatures,
  Error as ApiError,
  IrisMeasurements,
} from "./typescript/types.gen";
import { zError } from "./typescript/zod.gen";

type Inputs = {
  credit: CreditFeatures;
  iris: IrisMeasurements;
  known: BookPair;
  unknown: BookPair;
  photo: string;
  notAnImage: string;
};

const [baseUrl, inputsPath] = process.argv.slice(2);
const inputs = JSON.parse(readFileSync(inputsPath, "utf8")) as Inputs;
client.setConfig({ baseUrl });
// A call that fails throws its parsed error body, and its `data` is typed as always there.
const strict = { throwOnError: true } as const;

function upload(path: string, type: string): Blob {
  return new Blob([readFileSync(path)], { type });
}

/** A call that must fail with a 400: its error body, parsed with the generated schema. */
function badRequest(answer: { error?: unknown; response: Response }): ApiError {
  if (answer.response.status !== 400) {
    throw new Error(`expected a 400, got ${answer.response.status}`);
  }
  return zError.parse(answer.error);
}

async function main(): Promise<void> {
  const credit = await predictCredit({ ...strict, body: inputs.credit });
  const items = [inputs.credit, inputs.credit];
  const batch = await predictCreditBatch({ ...strict, body: { items } });
  const iris = await classifyIris({ ...strict, body: inputs.iris });
  const rated = await rateBook({ ...strict, body: inputs.known });
  const coldStart = await rateBook({ ...strict, body: inputs.unknown });
  const pairs = [inputs.known, inputs.unknown];
  const ratings = await rateBooks({ ...strict, body: { items: pairs } });
  const asked = { user_id: inputs.known.user_id, k: 3 };
  const recommended = await recommendBooks({ ...strict, body: asked });
  const photo = () => upload(inputs.photo, "image/jpeg");
  const mask = await classifyMask({ ...strict, body: { image: photo() } });
  const masks = await classifyMasks({ ...strict, body: { images: [photo(), photo()] } });
  const served = await models({ ...strict, body: {} });
  // Without throwOnError: the answer carries the status and the typed error body.
  const badInput = badRequest(
    await predictCredit({ body: { ...inputs.credit, debt_ratio: 1e9 } }),
  );
  const junk = upload(inputs.notAnImage, "image/jpeg");
  const badUpload = badRequest(await classifyMask({ body: { image: junk } }));
  console.log(
    JSON.stringify({
      predict_credit: credit.data.label,
      predict_credit_batch: batch.data.predictions.map((p) => p.label),
      classify_iris: iris.data.species,
      rate_book: { rating: rated.data.rating, title: rated.data.book?.title ?? null },
      rate_book_cold_start: { reason: coldStart.data.reason, book: coldStart.data.book },
      rate_books: ratings.data.predictions.map((p) => p.cold_start),
      recommend_books: recommended.data.books.map((b) => b.isbn),
      classify_mask: mask.data.probabilities.length,
      classify_masks: masks.data.predictions.map((p) => p.class_id),
      models: served.data.models.map((m) => m.tag),
      livez: (await livez(strict)).response.status,
      readyz: (await readyz(strict)).response.status,
      healthz: (await healthz(strict)).response.status,
      metrics: (await metrics(strict)).data.includes("# TYPE"),
      bad_input: badInput.detail?.map((problem) => problem.loc) ?? [],
      bad_upload: { error: badUpload.error, loc: badUpload.detail?.[0]?.loc ?? [] },
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
