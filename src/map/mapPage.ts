import { VERSION } from '../base/version.js';

/**
 * Only outpost's own script, style and JSON; no inline code, no frame, no form, nothing from
 * another origin. The page writes names and labels as text, never as markup.
 */
export const MAP_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Three linked nodes: the page's icon (served, not inline: the policy allows no data: URL). */
export const MAP_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M8 24 16 8 24 24Z" fill="none" stroke="#8a97a8" stroke-width="2"/><circle cx="16" cy="8" r="5" fill="#4c78a8"/><circle cx="8" cy="24" r="5" fill="#4c78a8"/><circle cx="24" cy="24" r="5" fill="#2a9d8f"/></svg>
`;

/** The page's shell; map.js fills it from /map/graph.json. */
export function mapPage(refreshSeconds: number): string {
  // The stylesheet's id tells cytoscape that its container rule is there already: it would
  // otherwise insert a <style> element, which the policy refuses.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link map · outpost</title>
<link rel="icon" href="/map/icon.svg" type="image/svg+xml">
<link rel="stylesheet" id="__________cytoscape_stylesheet" href="/map/map.css">
<script src="/map/map.js" defer></script>
</head>
<body data-refresh-seconds="${refreshSeconds}">
<header>
  <h1><a href="/">outpost</a> ${VERSION} · Link map</h1>
  <p id="status" role="status" aria-live="polite">Loading…</p>
  <form id="controls" role="search">
    <label for="filter">Filter by container, project or address</label>
    <input id="filter" type="search" autocomplete="off" placeholder="e.g. shop or db">
    <label class="check"><input id="pause" type="checkbox"> Pause refresh</label>
    <button id="fit" type="button">Fit to view</button>
  </form>
  <ul id="legend" aria-label="Legend">
    <li class="container">container</li><li class="host">host</li><li class="external">off the host</li>
    <li class="group">group (project or network)</li><li class="expected">link</li><li class="unexpected">unexpected link</li>
  </ul>
</header>
<main>
  <div id="graph" role="img" aria-label="Map of the containers and their links; the same graph is listed in the tables below"></div>
  <aside id="details" aria-live="polite" tabindex="-1">
    <h2>Details</h2>
    <p>Select a node or a link, on the map or in the tables.</p>
  </aside>
</main>
<section id="text-view" aria-labelledby="text-view-title">
  <h2 id="text-view-title">Text view</h2>
  <table id="nodes">
    <caption>Nodes</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Group</th><th scope="col">Image</th><th scope="col">Addresses</th><th scope="col">Listening</th></tr></thead>
    <tbody></tbody>
  </table>
  <table id="edges">
    <caption>Links (client → server)</caption>
    <thead><tr><th scope="col">Link</th><th scope="col">Client</th><th scope="col">Server</th><th scope="col">Port</th><th scope="col">Open</th><th scope="col">Counted</th><th scope="col">Traffic</th><th scope="col">Retransmits</th><th scope="col">RTT</th><th scope="col">Policy</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<noscript><p>The link map needs JavaScript; the same data is at <a href="/connections">/connections</a>.</p></noscript>
</body>
</html>
`;
}
