// Style sheets embedded in every HTML report (private to lib/notebook/html.ts).

/** Page layout: header, cells, prompts, outputs; readable on screen and on paper. */
export const PAGE_CSS = `
:root {
  --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --soft: #f6f8fa;
  --accent: #0b5cad; --ok: #1a7f37; --bad: #c21f2c; --bad-soft: #fff1f0;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
    sans-serif;
}
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
a { color: var(--accent); }
pre, code { font-family: var(--mono); font-size: 13px; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }

.report-header {
  border: 1px solid var(--border); border-radius: 8px; padding: 18px 22px; margin-bottom: 28px;
  background: var(--soft);
}
.report-header h1 { margin: 0 0 12px; font-size: 24px; line-height: 1.25; word-break: break-word; }
.report-meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
.report-meta dt { color: var(--muted); }
.report-meta dd { margin: 0; word-break: break-word; }
.status { display: inline-block; padding: 0 10px; border-radius: 999px; font-weight: 600;
  font-size: 13px; color: #fff; }
.status-ok { background: var(--ok); }
.status-error { background: var(--bad); }
.report-error { margin-top: 14px; padding: 10px 12px; border-left: 4px solid var(--bad);
  background: var(--bad-soft); border-radius: 4px; }
.report-error pre { color: #6e0b12; }
.params { margin-top: 14px; }
.params h2 { font-size: 15px; margin: 0 0 6px; color: var(--muted); font-weight: 600; }
.params-empty { color: var(--muted); font-style: italic; }

.scroll-x { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid var(--border); padding: 4px 10px; text-align: left;
  vertical-align: top; }
thead th, table.params-table th { background: var(--soft); }
table.params-table td code { white-space: pre-wrap; }

.cell { display: grid; grid-template-columns: 5.5em minmax(0, 1fr); column-gap: 10px;
  margin: 0 0 18px; }
.prompt { grid-column: 1; font-family: var(--mono); font-size: 12px; color: var(--muted);
  text-align: right; padding-top: 9px; white-space: nowrap; }
.prompt-out { color: #9a3412; }
.cell-body { grid-column: 2; min-width: 0; }
.cell-markdown .cell-body { padding: 0 2px; }
.cell-markdown .cell-body > :first-child { margin-top: 0; }
.cell-markdown .cell-body > :last-child { margin-bottom: 0; }
.cell-markdown pre { background: var(--soft); border: 1px solid var(--border);
  border-radius: 6px; padding: 8px 12px; }
.cell-markdown :not(pre) > code { background: var(--soft); padding: 1px 4px; border-radius: 4px; }
.cell-markdown img { max-width: 100%; }
.cell-markdown blockquote { margin: 0; padding-left: 12px; border-left: 3px solid var(--border);
  color: var(--muted); }
.source { background: var(--soft); border: 1px solid var(--border); border-radius: 6px;
  padding: 8px 12px; }
.source > summary { cursor: pointer; color: var(--muted); font-size: 12px; user-select: none; }
.source[open] > summary { margin-bottom: 4px; }
.cell-time { font-size: 11px; margin-top: 2px; }
.no-input .cell-code .prompt-in { padding-top: 6px; }
.toc { border: 1px solid var(--border); border-radius: 8px; padding: 10px 22px; margin-bottom: 28px; }
.toc h2 { font-size: 15px; margin: 0 0 6px; color: var(--muted); font-weight: 600; }
.toc ol { list-style: none; margin: 0; padding: 0; }
.toc li { margin: 2px 0; }
.toc .toc-level-2 { padding-left: 1.2em; }
.toc .toc-level-3 { padding-left: 2.4em; font-size: 14px; }
.tags { margin-bottom: 3px; }
.tag { display: inline-block; font-size: 11px; color: var(--muted); border: 1px solid var(--border);
  border-radius: 4px; padding: 0 5px; margin-right: 4px; }
.outputs { grid-column: 1 / span 2; display: grid; grid-template-columns: 5.5em minmax(0, 1fr);
  column-gap: 10px; }
.output { grid-column: 2; min-width: 0; padding: 6px 2px; }
.output + .output { border-top: 1px dashed #e6e9ed; }
.output-stream.stderr { background: #fff8e6; border-left: 3px solid #d29922; padding-left: 10px; }
.output-error { background: var(--bad-soft); border-left: 3px solid var(--bad);
  padding-left: 10px; }
.output-error .ename { font-weight: 600; color: var(--bad); }
.output img { max-width: 100%; height: auto; }
.output-html { overflow-x: auto; }
.output-unknown { color: var(--muted); font-style: italic; }
.plotly-figure { width: 100%; min-height: 360px; }
.raw { color: var(--muted); }
.footer { margin-top: 40px; color: var(--muted); font-size: 12px; text-align: center; }

@media (max-width: 700px) {
  main { padding: 12px; }
  .cell, .outputs { grid-template-columns: minmax(0, 1fr); }
  .prompt { text-align: left; padding-top: 0; }
  .cell-body, .output { grid-column: 1; }
  .outputs { grid-column: 1; }
}
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .report-header, .source { background: none; }
  .cell, .output, .report-header, tr, img, .plotly-figure, .toc { break-inside: avoid; }
  .source > summary { display: none; }
  pre { white-space: pre-wrap; }
  .scroll-x, .output-html { overflow: visible; }
  .modebar-container { display: none !important; }
  a { color: inherit; }
}
`;

/** Syntax colours for highlight.js classes (light, high contrast). */
export const HIGHLIGHT_CSS = `
.hljs { color: #24292f; }
.hljs-comment, .hljs-quote { color: #6a737d; font-style: italic; }
.hljs-keyword, .hljs-selector-tag, .hljs-doctag { color: #b4236b; }
.hljs-literal, .hljs-number { color: #005cc5; }
.hljs-string, .hljs-regexp, .hljs-template-tag { color: #116329; }
.hljs-subst, .hljs-template-variable { color: #24292f; }
.hljs-title, .hljs-title.function_ { color: #6639ba; }
.hljs-title.class_, .hljs-type, .hljs-built_in { color: #953800; }
.hljs-attr, .hljs-property, .hljs-variable, .hljs-params { color: #0a3069; }
.hljs-meta, .hljs-symbol { color: #8250df; }
.hljs-operator, .hljs-punctuation { color: #57606a; }
.hljs-emphasis { font-style: italic; }
.hljs-strong { font-weight: 600; }
.hljs-addition { color: #116329; background: #dafbe1; }
.hljs-deletion { color: #82071e; background: #ffebe9; }
`;

const ANSI_COLOURS: [string, string, string][] = [
  // name, normal, bright (chosen to stay readable on a white page)
  ["black", "#24292f", "#6e7781"],
  ["red", "#c21f2c", "#e5534b"],
  ["green", "#1a7f37", "#2da44e"],
  ["yellow", "#9a6700", "#bf8700"],
  ["blue", "#0b5cad", "#3b82f6"],
  ["magenta", "#8250df", "#a475f9"],
  ["cyan", "#1b7c83", "#0598bc"],
  ["white", "#8c959f", "#afb8c1"],
];

/** Colours for the classes ansi_up emits (`ansi-red-fg`, `ansi-bright-blue-bg`, …). */
export const ANSI_CSS = ANSI_COLOURS.map(([name, normal, bright]) =>
  `.ansi-${name}-fg { color: ${normal}; } .ansi-bright-${name}-fg { color: ${bright}; }\n` +
  `.ansi-${name}-bg { background-color: ${normal}; } ` +
  `.ansi-bright-${name}-bg { background-color: ${bright}; }`
).join("\n");
