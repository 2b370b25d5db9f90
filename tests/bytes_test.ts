import { assertEquals } from "@std/assert";
import { base64ToBytes, bytesToBase64, concatBytes } from "../lib/util/bytes.ts";
import { escapeHtml } from "../lib/util/html.ts";

Deno.test("bytes: concatenation and a base64 round trip longer than one encoding chunk", () => {
  assertEquals(
    concatBytes([Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2, 3)]),
    Uint8Array.of(1, 2, 3),
  );
  assertEquals(bytesToBase64(new TextEncoder().encode("hi")), "aGk=");
  const big = Uint8Array.from({ length: 0x8000 * 2 + 5 }, (_, i) => (i * 31) % 256);
  assertEquals(base64ToBytes(bytesToBase64(big)), big);
});

Deno.test("html: escapeHtml covers content and quoted attributes", () => {
  assertEquals(
    escapeHtml(`<a href="x" title='y'>&</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
  );
});
