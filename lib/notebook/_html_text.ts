// Text renderers for the HTML report: highlighted code, markdown, ANSI terminal text
// (private to lib/notebook/html.ts).
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import typescript from "highlight.js/lib/languages/typescript";
import { AnsiUp } from "ansi_up";
import { Marked, type Tokens } from "marked";
import { escapeHtml } from "../util/html.ts";

hljs.registerLanguage("typescript", typescript);
hljs.registerLanguage("javascript", javascript);
hljs.registerLanguage("json", json);
hljs.registerLanguage("bash", bash);

/** Highlights source code as `language` (default TypeScript); unknown languages are escaped. */
export function highlightCode(code: string, language = "typescript"): string {
  const lang = language.trim().toLowerCase();
  if (lang !== "" && hljs.getLanguage(lang)) {
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  }
  return escapeHtml(code);
}

const markdown = new Marked({
  gfm: true,
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? "").match(/^\S*/)?.[0] ?? "";
      const cls = language ? ` class="hljs language-${escapeHtml(language)}"` : ` class="hljs"`;
      return `<pre><code${cls}>${highlightCode(text, language)}</code></pre>\n`;
    },
  },
});

/** Renders markdown to HTML (GitHub flavour; fenced code highlighted, math left as written). */
export function renderMarkdown(source: string): string {
  return markdown.parse(source, { async: false });
}

/**
 * Turns terminal text into HTML: escapes it, converts ANSI colour codes to spans with `ansi-*`
 * classes, and applies carriage returns and backspaces the way a terminal would.
 */
export function ansiToHtml(text: string): string {
  const converter = new AnsiUp();
  converter.use_classes = true;
  return converter.ansi_to_html(applyControlChars(text));
}

/**
 * Applies `\r` (return to line start; the text written last on a line wins, as with progress
 * bars) and `\b` (erase the previous character) to terminal text.
 */
export function applyControlChars(text: string): string {
  let out = text.replace(/\r+\n/g, "\n");
  if (out.includes("\r")) {
    out = out.split("\n").map((line) => {
      const parts = line.split("\r").filter((part) => part !== "");
      return parts.length > 0 ? parts[parts.length - 1] : "";
    }).join("\n");
  }
  if (out.includes("\b")) {
    const chars: string[] = [];
    for (const ch of out) {
      if (ch !== "\b") chars.push(ch);
      else if (chars.length > 0 && chars[chars.length - 1] !== "\n") chars.pop();
    }
    out = chars.join("");
  }
  return out;
}
