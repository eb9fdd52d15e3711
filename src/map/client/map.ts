/**
 * The link map page: draws /map/graph.json with cytoscape (fcose layout), lists the same graph in
 * two tables, refreshes every few seconds while the tab is visible, and keeps every node where it
 * was. Names and labels only ever reach the page as text (textContent, canvas labels).
 */
import cytoscape from 'cytoscape';
import fcose from 'cytoscape-fcose';
import {
  edgeEventsHref,
  edgeRates,
  exceedsLimits,
  filterGraph,
  formatByteRate,
  formatBytes,
  groupGraph,
  isUnexpected,
  type GraphEdge,
  type GraphNode,
  type LinkGraph,
} from '../graphModel.js';

cytoscape.use(fcose);

const REFRESH_MS = 1000 * (Number(document.body.dataset.refreshSeconds) || 5);
const COMPOUND = 'compound:';
const MAX_FIT_ZOOM = 1.3;
const LARGE_GRAPH_NODES = 100;

/** An element the page is made with (src/map/mapPage.ts); missing, the page and the script disagree. */
function $(selector: string): HTMLElement {
  const element = document.querySelector<HTMLElement>(selector);
  if (!element) throw new Error(`the map page has no ${selector}`);
  return element;
}
const input = (selector: string): HTMLInputElement => {
  const element = $(selector);
  if (!(element instanceof HTMLInputElement)) throw new Error(`the map page's ${selector} is no input`);
  return element;
};
const status = $('#status');
const filter = input('#filter');
const pause = input('#pause');
const details = $('#details');

const cy = cytoscape({
  container: $('#graph'),
  minZoom: 0.05,
  maxZoom: 4,
  style: [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'font-size': 11,
        'text-valign': 'bottom',
        'text-margin-y': 3,
        width: 26,
        height: 26,
        'background-color': '#4c78a8',
        color: '#1b1b1b',
        'min-zoomed-font-size': 7,
      },
    },
    { selector: 'node.host', style: { shape: 'diamond', 'background-color': '#2a9d8f', width: 32, height: 32 } },
    { selector: 'node.external', style: { shape: 'ellipse', 'background-color': '#8d8d8d' } },
    { selector: 'node.group', style: { shape: 'round-rectangle', 'background-color': '#e07b00', width: 40, height: 30 } },
    {
      selector: ':parent',
      style: {
        'background-color': '#eef2f7',
        'background-opacity': 0.7,
        'border-color': '#9fb3c8',
        'border-width': 1,
        shape: 'round-rectangle',
        'text-valign': 'top',
        'text-halign': 'center',
        'font-size': 12,
        color: '#3d5166',
        padding: '12px',
      },
    },
    {
      selector: 'edge',
      style: {
        width: 'data(width)',
        'line-color': '#8a97a8',
        'target-arrow-color': '#8a97a8',
        'target-arrow-shape': 'triangle',
        'curve-style': 'bezier',
        label: 'data(label)',
        'font-size': 9,
        'text-rotation': 'autorotate',
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.85,
        'text-background-padding': '1px',
        'min-zoomed-font-size': 8,
        color: '#33414f',
      },
    },
    {
      selector: 'edge.unexpected',
      style: { width: 3, 'line-color': '#c81e1e', 'target-arrow-color': '#c81e1e', 'line-style': 'dashed', color: '#a01010' },
    },
    { selector: ':selected', style: { 'overlay-color': '#ffbf00', 'overlay-opacity': 0.35, 'overlay-padding': 6 } },
  ],
});

let full: LinkGraph | undefined;
let view: LinkGraph | undefined;
let grouped = false;
let lastLayoutMs = 0;
let refreshes = 0;
/** Where each node was last drawn, so that one hidden by a filter comes back to its place. */
const positions = new Map<string, cytoscape.Position>();

/** A handle for people and tests that look into the page (devtools, Playwright). */
(window as unknown as { outpostMap: unknown }).outpostMap = {
  cy,
  get lastLayoutMs() {
    return lastLayoutMs;
  },
  get refreshes() {
    return refreshes;
  },
};

/** A node's name; a group's with the number of containers in it. */
function displayName(n: GraphNode): string {
  return n.kind === 'group' ? `${n.label} (${n.members})` : n.label;
}

const addressesText = (n: GraphNode) => (n.addresses ?? []).map((a) => (a.network ? `${a.address} (${a.network})` : a.address)).join(', ');
const listeningText = (n: GraphNode) => (n.listening ?? []).map((l) => `${l.address}:${l.port}`).join(', ');

/** Bytes a second per edge id, between the last two graphs read (none after the first). */
let rates = new Map<string, number>();

const rttText = (e: GraphEdge) => (e.rttSeconds === undefined ? '' : `${(e.rttSeconds * 1000).toFixed(e.rttSeconds < 0.01 ? 2 : 0)} ms`);
const rateText = (e: GraphEdge) => {
  const rate = rates.get(e.id);
  return rate === undefined ? '' : formatByteRate(rate);
};

function edgeLabel(e: GraphEdge): string {
  const health = [rateText(e), e.rttSeconds === undefined ? '' : `rtt ${rttText(e)}`].filter(Boolean);
  return [`:${e.port}`, `${e.open} open`, `${e.counted} counted`, ...health].join(' · ');
}

/** Wider with more traffic: 1.6 px idle, about 4 at 1 kB/s, 6.6 at 1 MB/s. */
const edgeWidth = (e: GraphEdge) => 1.6 + Math.min(6, Math.log10(1 + (rates.get(e.id) ?? 0)) / 1.2);

/** Every element elementsOf makes has an id; cytoscape's type leaves it optional. */
const idOf = (d: cytoscape.ElementDefinition): string => d.data.id ?? '';

function elementsOf(g: LinkGraph, asGroups: boolean): cytoscape.ElementDefinition[] {
  const compounds = new Map<string, cytoscape.ElementDefinition>();
  // Boxes for groups, when there is more than one: a single box tells nothing, and costs the layout.
  const boxed = !asGroups && new Set(g.nodes.map((n) => n.group).filter(Boolean)).size > 1;
  const nodes = g.nodes.map((n): cytoscape.ElementDefinition => {
    const parent = boxed && n.group ? COMPOUND + n.group : undefined;
    if (parent && !compounds.has(parent))
      compounds.set(parent, { group: 'nodes', data: { id: parent, label: n.group }, classes: 'compound' });
    const ports = [...new Set((n.listening ?? []).map((l) => l.port))].sort((a, b) => a - b);
    // The name, and under it the ports it listens on.
    const label = ports.length > 0 ? `${displayName(n)}\n:${ports.join(' :')}` : displayName(n);
    return { group: 'nodes', data: { id: n.id, name: n.label, label, ...(parent ? { parent } : {}) }, classes: n.kind };
  });
  const edges = g.edges.map((e): cytoscape.ElementDefinition => ({
    group: 'edges',
    data: { id: e.id, source: e.source, target: e.target, port: e.port, open: e.open, label: edgeLabel(e), width: edgeWidth(e) },
    classes: isUnexpected(e) ? 'unexpected' : '',
  }));
  return [...compounds.values(), ...nodes, ...edges];
}

/** Near a neighbour already drawn, else where it was before, else the middle of the view. */
function startingPosition(id: string, g: LinkGraph): cytoscape.Position {
  const remembered = positions.get(id);
  if (remembered) return remembered;
  for (const e of g.edges) {
    const other = e.source === id ? e.target : e.target === id ? e.source : undefined;
    const at = other !== undefined ? cy.getElementById(other) : undefined;
    if (at?.nonempty() && !at.isParent()) {
      const p = at.position();
      return { x: p.x + 40 * (Math.random() - 0.5), y: p.y + 40 * (Math.random() - 0.5) };
    }
  }
  const extent = cy.extent();
  return { x: (extent.x1 + extent.x2) / 2 + 60 * (Math.random() - 0.5), y: (extent.y1 + extent.y2) / 2 + 60 * (Math.random() - 0.5) };
}

function draw(g: LinkGraph, asGroups: boolean): void {
  const fresh = asGroups !== grouped || cy.nodes().empty();
  if (asGroups !== grouped) cy.elements().remove();
  grouped = asGroups;
  const wanted = elementsOf(g, asGroups);
  const wantedIds = new Set(wanted.map((d) => idOf(d)));
  const isCompound = (d: cytoscape.ElementDefinition) => idOf(d).startsWith(COMPOUND);
  const isNew = (d: cytoscape.ElementDefinition) => cy.getElementById(idOf(d)).empty();
  // New boxes first, so that nodes can move into them; nodes out of a box before it goes, or they would go with it.
  cy.add(wanted.filter((d) => isCompound(d) && isNew(d)));
  const added: cytoscape.ElementDefinition[] = [];
  cy.batch(() => {
    for (const def of wanted) {
      const existing = cy.getElementById(idOf(def));
      if (existing.empty()) {
        added.push(def);
        continue;
      }
      const { parent, ...data } = def.data as cytoscape.NodeDataDefinition & { parent?: string };
      existing.data(data);
      existing.classes(def.classes ?? '');
      if (existing.isNode() && !isCompound(def) && (existing.parent().first().id() || undefined) !== parent)
        existing.move({ parent: parent ?? null });
    }
    cy.elements()
      .filter((e) => !wantedIds.has(e.id()))
      .remove();
  });
  const newNodes = added.filter((d) => d.group === 'nodes');
  // A first drawing is laid out from scratch; later, new nodes start next to their place.
  if (!fresh) for (const d of newNodes) d.position = startingPosition(idOf(d), g);
  cy.add(newNodes);
  cy.add(added.filter((d) => d.group === 'edges'));
  if (newNodes.length > 0) layout(fresh ? [] : newNodes.map((d) => idOf(d)));
  cy.nodes().forEach((n) => {
    if (!n.isParent()) positions.set(n.id(), { ...n.position() });
  });
}

/** Everything drawn in view; a small graph is not blown up to fill it. */
function fitView(): void {
  cy.fit(undefined, 30);
  if (cy.zoom() > MAX_FIT_ZOOM) {
    cy.zoom(MAX_FIT_ZOOM);
    cy.center();
  }
}

/** The whole graph on the first draw; afterwards only the new nodes move, every other stays put. */
function layout(newIds: string[]): void {
  const started = performance.now();
  const incremental = newIds.length > 0;
  const moving = new Set(newIds);
  const fixedNodeConstraint = incremental
    ? cy
        .nodes()
        .filter((n) => !n.isParent() && !moving.has(n.id()))
        .map((n: cytoscape.NodeSingular) => ({ nodeId: n.id(), position: { ...n.position() } }))
    : undefined;
  const options = {
    name: 'fcose',
    quality: incremental ? 'proof' : 'default',
    randomize: !incremental,
    animate: false,
    fit: false,
    padding: 30,
    packComponents: false,
    // Measured on 200 nodes and 1,000 links (npm run bench:map): labels in the node sizes and the
    // default 2,500 iterations cost a second more, for a drawing that looks the same at that size.
    nodeDimensionsIncludeLabels: cy.nodes().length <= LARGE_GRAPH_NODES,
    numIter: cy.nodes().length <= LARGE_GRAPH_NODES ? 2500 : 500,
    idealEdgeLength: () => 90,
    nodeRepulsion: () => 8000,
    ...(fixedNodeConstraint && fixedNodeConstraint.length > 0 ? { fixedNodeConstraint } : {}),
  } as cytoscape.LayoutOptions;
  cy.layout(options).run();
  // The fixed nodes end near where they were, shifted with the whole drawing and nudged apart
  // where labels grew: undo the shift for the new nodes, and put every fixed node back exactly.
  const anchor = fixedNodeConstraint?.[0];
  if (anchor) {
    const now = cy.getElementById(anchor.nodeId).position();
    cy.nodes()
      .filter((n) => moving.has(n.id()))
      .shift({ x: anchor.position.x - now.x, y: anchor.position.y - now.y });
    for (const { nodeId, position } of fixedNodeConstraint) cy.getElementById(nodeId).position(position);
  }
  if (!incremental) fitView();
  lastLayoutMs = Math.round(performance.now() - started);
}

function text(tag: string, content: string | number, attributes: Record<string, string> = {}): HTMLElement {
  const element = document.createElement(tag);
  element.textContent = String(content);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function row(cells: (string | number | HTMLElement)[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof HTMLElement) td.append(cell);
    else td.textContent = String(cell);
    tr.append(td);
  }
  return tr;
}

function selectButton(id: string, label: string): HTMLButtonElement {
  const button = text('button', label, { type: 'button', 'data-id': id }) as HTMLButtonElement;
  button.addEventListener('click', () => {
    select(id);
  });
  return button;
}

let nodesById = new Map<string, GraphNode>();
const nameOf = (id: string) => nodesById.get(id)?.label ?? id;

function fillTables(g: LinkGraph): void {
  const focused = (document.activeElement as HTMLElement | null)?.dataset.id;
  $('#nodes tbody').replaceChildren(
    ...g.nodes.map((n) => row([selectButton(n.id, displayName(n)), n.kind, n.group, n.image ?? '', addressesText(n), listeningText(n)])),
  );
  $('#edges tbody').replaceChildren(
    ...g.edges.map((e) => {
      const tr = row([
        selectButton(e.id, `${nameOf(e.source)} → ${nameOf(e.target)}:${e.port}`),
        nameOf(e.source),
        nameOf(e.target),
        String(e.port),
        e.open,
        e.counted,
        rateText(e),
        String(e.retransmits),
        rttText(e),
        isUnexpected(e) ? 'unexpected' : '',
      ]);
      if (isUnexpected(e)) tr.className = 'unexpected';
      return tr;
    }),
  );
  if (focused) document.querySelector<HTMLElement>(`button[data-id="${CSS.escape(focused)}"]`)?.focus();
}

function showDetails(id: string): void {
  const node = nodesById.get(id);
  const edge = view?.edges.find((e) => e.id === id);
  const list = document.createElement('dl');
  const item = (term: string, value: string | number | undefined) => {
    if (value === undefined || value === '') return;
    list.append(text('dt', term), text('dd', value));
  };
  let title = nameOf(id);
  if (node) {
    item('Kind', node.kind);
    item('Group', node.group);
    item('Image', node.image);
    item('Compose service', node.composeService);
    item('Network mode', node.networkMode);
    item('Addresses', addressesText(node));
    item('Resolved from', node.names?.join(', '));
    item('Listening', listeningText(node));
    item('Containers', node.members);
  } else if (edge) {
    title = `${nameOf(edge.source)} → ${nameOf(edge.target)}`;
    item('Client', nameOf(edge.source));
    item('Server', nameOf(edge.target));
    item('Port', String(edge.port));
    item('Open now', edge.open);
    item('Counted', edge.counted);
    item('Traffic now', rateText(edge));
    item('Bytes to the server', formatBytes(edge.bytesToServer));
    item('Bytes to the client', formatBytes(edge.bytesToClient));
    item('Retransmitted segments', edge.retransmits);
    item('Round-trip time', rttText(edge));
    item('Policy', isUnexpected(edge) ? `unexpected (${edge.unexpectedOpen} open, ${edge.unexpectedCounted} counted)` : 'not unexpected');
    const events = isUnexpected(edge) ? edgeEventsHref(edge) : undefined;
    if (events) {
      // Who made each connection and which rules refused it.
      const a = document.createElement('a');
      a.href = events;
      a.textContent = 'show';
      const dd = document.createElement('dd');
      dd.append(a);
      list.append(text('dt', 'Events'), dd);
    }
  } else if (id.startsWith(COMPOUND)) {
    title = id.slice(COMPOUND.length);
    item('Containers', cy.getElementById(id).children().length);
  }
  details.replaceChildren(text('h2', 'Details'), text('h3', title), list);
}

function select(id: string): void {
  const element = cy.getElementById(id);
  cy.elements(':selected').unselect();
  if (element.nonempty()) {
    element.select();
    cy.center(element);
  }
  showDetails(id);
}

cy.on('tap', 'node, edge', (event) => {
  showDetails((event.target as cytoscape.SingularElementArgument).id());
});

let drawnFilter = '';

function render(): void {
  if (!full) return;
  const filtered = filterGraph(full, filter.value);
  const asGroups = exceedsLimits(filtered);
  view = asGroups ? groupGraph(filtered) : filtered;
  nodesById = new Map(view.nodes.map((n) => [n.id, n]));
  draw(view, asGroups);
  // A new filter shows what it kept; a refresh leaves the view where the user put it.
  if (filter.value !== drawnFilter) fitView();
  drawnFilter = filter.value;
  fillTables(view);
  const containers = full.nodes.filter((n) => n.kind === 'container').length;
  const parts = [
    full.up ? '' : 'The Docker API does not answer: nothing to draw.',
    `${containers} containers, ${full.edges.length} links`,
    filter.value.trim() ? `${filtered.nodes.length} nodes shown (filter)` : '',
    asGroups
      ? `drawn one node per project or network: ${filtered.nodes.length} nodes and ${filtered.edges.length} links are too many to draw one by one; filter to see them`
      : '',
    `collected ${new Date(full.collectedAt).toLocaleTimeString()}`,
    `layout ${lastLayoutMs} ms`,
  ];
  status.textContent = parts.filter(Boolean).join(' · ');
}

let timer: number | undefined;

async function refresh(): Promise<void> {
  window.clearTimeout(timer);
  if (!document.hidden && !pause.checked) {
    try {
      const response = await fetch('/map/graph.json', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const next = (await response.json()) as LinkGraph;
      rates = edgeRates(full, next);
      full = next;
      render();
      refreshes++;
      document.body.dataset.refreshes = String(refreshes);
    } catch (error) {
      status.textContent = `Cannot read /map/graph.json (${(error as Error).message}); showing the last graph.`;
    }
  }
  timer = window.setTimeout(refresh, REFRESH_MS);
}

let typing: number | undefined;
filter.addEventListener('input', () => {
  window.clearTimeout(typing);
  typing = window.setTimeout(render, 150);
});
$('#controls').addEventListener('submit', (event) => {
  event.preventDefault();
});
pause.addEventListener('change', () => void refresh());
$('#fit').addEventListener('click', fitView);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refresh();
});

void refresh();
