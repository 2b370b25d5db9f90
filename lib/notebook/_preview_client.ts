/**
 * What `preview.ts` adds to every page it serves: a banner and a small script that listens to the
 * server's `/events` stream (server-sent events). Each event is the preview's state as JSON
 * (`PreviewState` in preview.ts); when its `version` is newer than the page's, a render finished
 * and the page reloads itself; while cells run, the banner says which.
 *
 * @module
 */
import { escapeHtml } from "../util/html.ts";
import { jsonForScript } from "./_html_escape.ts";

const BANNER_CSS = `#preview-banner{position:fixed;top:0;left:0;right:0;z-index:1000;margin:0;
padding:.35em 1em;font:14px/1.4 system-ui,sans-serif;color:#fff;background:#1f6feb;
display:flex;gap:1em;align-items:center;white-space:pre-wrap}
#preview-banner[hidden]{display:none}
#preview-banner.preview-error{background:#b3261e}
#preview-banner.preview-stopped{background:#555}
#preview-banner button{margin-left:auto;font:inherit}`;

/**
 * The banner and script for a page of render `version` (0: nothing rendered yet), inserted
 * before `</body>` (or appended when there is none).
 *
 * @example
 * ```ts
 * import { injectPreviewClient } from "./_preview_client.ts";
 * injectPreviewClient("<html><body><p>hi</p></body></html>", 3);
 * ```
 */
export function injectPreviewClient(html: string, version: number): string {
  const client = `<style>${BANNER_CSS}</style>
<div id="preview-banner" role="status" hidden><span id="preview-message"></span>
<button type="button" id="preview-restart" title="Restart the kernel and run every cell">Restart</button></div>
<script>
(() => {
  const version = ${jsonForScript(version)};
  const banner = document.getElementById("preview-banner");
  const message = document.getElementById("preview-message");
  window.previewVersion = version;
  document.getElementById("preview-restart").addEventListener("click", () => {
    fetch("/restart", { method: "POST" });
  });
  const show = (text, kind) => {
    banner.hidden = text === "";
    banner.className = kind ? "preview-" + kind : "";
    message.textContent = text;
  };
  const events = new EventSource("/events");
  events.addEventListener("state", (event) => {
    const state = JSON.parse(event.data);
    window.previewState = state;
    if (state.version > version && state.phase !== "running") {
      events.close();
      location.reload();
      return;
    }
    if (state.phase === "running") {
      show((state.restarted ? "Kernel restarted. " : "") + "Running " + state.progress + " …", "");
    } else if (state.problem) {
      show(state.problem, "error");
    } else {
      show("", "");
    }
  });
  events.addEventListener("error", () => {
    // The browser retries by itself; the next state event clears this.
    show("The preview server does not answer (stopped?).", "stopped");
  });
})();
</script>
`;
  const at = html.lastIndexOf("</body>");
  return at < 0 ? html + client : html.slice(0, at) + client + html.slice(at);
}

/**
 * The page served before the first render is done.
 *
 * @example
 * ```ts
 * import { waitingPage } from "./_preview_client.ts";
 * waitingPage("notebooks/01_shapes.ipynb");
 * ```
 */
export function waitingPage(notebook: string): string {
  return injectPreviewClient(
    `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(notebook)} — preview</title></head>
<body><main style="font:16px system-ui,sans-serif;margin:4em auto;max-width:40em">
<h1>${
      escapeHtml(notebook)
    }</h1><p>The first run is under way; this page reloads when it is done.</p>
</main></body></html>
`,
    0,
  );
}
