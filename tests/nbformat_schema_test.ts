// The nbformat validator the other tests rely on must reject what Jupyter would reject; otherwise
// every "the notebook is valid" check would pass vacuously.
import { assertEquals, assertThrows } from "@std/assert";
import { assertValidNotebook, FIXTURES } from "./_notebook_helpers.ts";
import { join } from "node:path";

/** A notebook as loose JSON, to break on purpose. */
type RawNotebook = { cells: Record<string, unknown>[]; [key: string]: unknown };
const firstCode = (nb: RawNotebook) => nb.cells.find((c) => c.cell_type === "code")!;

const valid: RawNotebook = JSON.parse(await Deno.readTextFile(join(FIXTURES, "small.ipynb")));

Deno.test("nbformat validator: accepts a real notebook", () => {
  assertValidNotebook(valid, "small.ipynb");
});

Deno.test("nbformat validator: rejects notebooks Jupyter would refuse, naming the problem", () => {
  const broken: [string, (nb: RawNotebook) => void, string][] = [
    ["no nbformat", (nb) => delete nb.nbformat, "nbformat"],
    ["code cell without outputs", (nb) => {
      const cell = firstCode(nb);
      delete cell.outputs;
    }, "outputs"],
    ["stream output without text", (nb) => {
      const cell = firstCode(nb);
      cell.outputs = [{ output_type: "stream", name: "stdout" }];
    }, "text"],
    ["execution_count as a string", (nb) => {
      const cell = firstCode(nb);
      cell.execution_count = "1";
    }, "execution_count"],
    [
      "unknown cell type",
      (nb) => nb.cells.push({ cell_type: "prose", metadata: {}, source: [] }),
      "prose",
    ],
  ];
  for (const [label, mutate, mentioned] of broken) {
    const nb = structuredClone(valid);
    mutate(nb);
    const err = assertThrows(
      () => assertValidNotebook(nb, label),
      Error,
      "is not valid nbformat 4",
    );
    assertEquals(err.message.includes(label), true, label);
    // The errors name what is wrong.
    assertEquals(
      err.message.includes(mentioned) || err.message.includes("oneOf") ||
        err.message.includes("const"),
      true,
      `${label}: ${err.message.slice(0, 300)}`,
    );
  }
});
