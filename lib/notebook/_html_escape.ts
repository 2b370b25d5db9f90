// Escaping helpers for the HTML report (private to lib/notebook/html.ts).

/**
 * Serializes a value as JSON that is safe inside an inline `<script>`: `<` is written as `\u003c`
 * so that neither `</script>` nor `<!--` can appear, and U+2028/U+2029 are escaped too.
 */
export function jsonForScript(value: unknown): string {
  return (JSON.stringify(value) ?? "null")
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Removes the tags from an HTML fragment, keeping its text (entities stay escaped). */
export function stripTags(html: string): string {
  return html.replace(/<[^>]*>/g, "");
}
