import { stringify } from 'yaml';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from './rulesConfig.js';

/**
 * The identity of a link: who (container), which way, with whom (peer, and remote_instance when
 * the peer is a container on another host), on which service port.
 */
export const LINK_LABELS = 'instance, container, direction, peer, remote_instance, port';
export const LISTENER_LABELS = 'instance, container, port';

interface RecordingRule {
  record: string;
  expr: string;
}

interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval: string; rules: (RecordingRule | AlertingRule)[] }[];
}

/** PromQL text without the indentation of the template literal it was written in. */
function promql(text: string): string {
  const lines = text.replace(/^\n/, '').replace(/\s+$/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return `${lines.map((l) => l.slice(indent)).join('\n')}\n`;
}

function alert(
  config: RulesConfig,
  name: string,
  severity: string,
  expr: string,
  summary: string,
  description: string,
  forDuration?: string,
  annotations: Record<string, string> = {},
): AlertingRule {
  return {
    alert: name,
    expr: promql(expr),
    ...(forDuration ? { for: forDuration } : {}),
    labels: { severity },
    annotations: { summary, description, runbook_url: `${config.runbookUrl}#${name.toLowerCase()}`, ...annotations },
  };
}

/**
 * The recording and alerting rules, mixin style. The recording rules are what the link map and
 * the alerts read, so each is computed once per evaluation.
 */
export function buildRules(overrides: Partial<RulesConfig> = {}): RuleFile {
  const c: RulesConfig = { ...DEFAULT_RULES_CONFIG, ...overrides };

  // A peer one outpost could not name (remote_container="") is named across instances: by a
  // container address of global scope, else — for an outbound call to another host's address —
  // by the container publishing that port there; else only its instance is known (a host
  // address). Each directory holds only keys with one owner: an address on two hosts names
  // nobody. remote_instance is set only by these joins.
  const IDENTITY = 'instance, job, container, image, direction, remote_address, port';
  const acrossHosts = (metric: string) => `
          ${metric}{remote_container!=""}
          or
          (
            ${metric}{remote_container=""} * on (remote_address) group_left (remote_instance, remote_container) outpost:peer:container_address
            or on (${IDENTITY})
            (
              ${metric}{remote_container="", direction="outbound"} * on (remote_address) group_left (remote_instance) outpost:peer:host_address
            ) * on (remote_instance, port) group_left (remote_container) outpost:peer:published_port
            or on (${IDENTITY})
            ${metric}{remote_container=""} * on (remote_address) group_left (remote_instance) outpost:peer:host_address
            or on (${IDENTITY})
            ${metric}{remote_container=""}
          )`;
  // peer: the container at the other end when it is named, else the remote address.
  const byLink = (metric: string, aggregation = 'sum', extra = '') => `
        ${aggregation} by (instance, job, container, direction, peer, remote_instance, port${extra}) (
          label_replace(
            label_replace(${metric}, "peer", "$1", "remote_address", "(.*)"),
            "peer", "$1", "remote_container", "(.+)"
          )
        )`;
  // A series of the exporter with its peer named across hosts: its own labels, remote_container
  // filled in where the join named it, and remote_instance.
  const named = (record: string, metric: string): RecordingRule => ({ record, expr: promql(acrossHosts(metric)) });
  // Keys of `expr` (labels `key`) with one owner (labels `owner`) across every instance.
  const uniqueBy = (expr: string, key: string, owner: string) => `
        ${expr}
        unless on (${key}) (count by (${key}) (group by (${key}, ${owner}) (${expr})) > 1)`;
  const renamed = (expr: string, pairs: [string, string][]) =>
    pairs.reduce((e, [to, from]) => `label_replace(${e}, "${to}", "$1", "${from}", "(.*)")`, expr);
  // Connections counted in the window, however short. A counter series younger than the window
  // counts whole: increase() would miss its first connection (0 → 1 is never scraped, the series
  // starts at 1).
  const inWindow = (total: string, window = c.connectionsWindow) => `
            ${total} unless ${total} offset ${window}
            or
            increase(${total}[${window}])`;
  // Open connections plus new ones, per link, present when above 0 (either side may be absent).
  const openOrNew = (open: string, counted: string) => `
        (${open} or 0 * ${counted})
          + (${counted} or 0 * ${open})
        > 0`;
  // Active links with Grafana's edge colour: red when the policy does not allow the link.
  const colored = (selector: string) => `(
              label_replace(outpost:link:active${selector} and on (${LINK_LABELS}, job) outpost:link:unexpected, "color", "red", "", "")
              or
              label_replace(outpost:link:active${selector} unless on (${LINK_LABELS}, job) outpost:link:unexpected, "color", "gray", "", "")
            )`;
  // The ends of link-map edges, as node ids: "name@instance" for a container or a host, so that
  // the same name on two hosts is two nodes (a container of another host: name@remote_instance);
  // an address is its own id. Each kind of peer selects its links and names their peer end.
  const ADDRESS_PEER = '[0-9]+\\\\.[0-9]+\\\\.[0-9]+\\\\.[0-9]+|.*:.*';
  const otherHost = {
    selector: `remote_instance!="", peer!~"${ADDRESS_PEER}"`,
    id: (e: string, l: string) => `label_join(${e}, "${l}", "@", "peer", "remote_instance")`,
  };
  const thisHost = (peer: string) => ({
    selector: `remote_instance="", peer${peer}`,
    id: (e: string, l: string) => `label_join(${e}, "${l}", "@", "peer", "instance")`,
  });
  const address = {
    selector: `peer=~"${ADDRESS_PEER}"`,
    id: (e: string, l: string) => `label_replace(${e}, "${l}", "$1", "peer", "(.*)")`,
  };
  const edges = (
    direction: 'outbound' | 'inbound',
    kinds: { selector: string; id: (e: string, l: string) => string }[],
    series: (selector: string) => string,
  ) => {
    const [own, peer] = direction === 'outbound' ? ['source', 'target'] : ['target', 'source'];
    return kinds
      .map((k) => k.id(`label_join(${series(`{direction="${direction}", ${k.selector}}`)}, "${own}", "@", "container", "instance")`, peer))
      .join('\n          or\n          ');
  };
  // The link map's edges of a per-link series: every outbound link, and inbound links from what
  // is no container of this host (the host itself, an address, a container of another host),
  // which have no outbound side here to show them; each with its edge id, source → target → port.
  const asEdges = (series: (selector: string) => string) => `
        label_join(
          ${edges('outbound', [otherHost, thisHost(`!~"${ADDRESS_PEER}"`), address], series)}
          or
          ${edges('inbound', [otherHost, thisHost('="host"'), address], series)},
          "id", " → ", "source", "target", "port"
        )`;
  const records: RecordingRule[] = [
    {
      // Directory of container addresses that name a container across hosts: global scope only
      // (overlay, macvlan, routed); a private bridge address (172.17.0.2 on every host) never.
      record: 'outpost:peer:container_address',
      expr: promql(
        uniqueBy(
          renamed('max by (instance, container, address) (outpost_container_address_info{scope="global"})', [
            ['remote_address', 'address'],
            ['remote_instance', 'instance'],
            ['remote_container', 'container'],
          ]),
          'remote_address',
          'remote_instance, remote_container',
        ),
      ),
    },
    {
      // Directory of host addresses: which instance a host address belongs to.
      record: 'outpost:peer:host_address',
      expr: promql(
        uniqueBy(
          renamed('max by (instance, address) (outpost_host_address_info)', [
            ['remote_address', 'address'],
            ['remote_instance', 'instance'],
          ]),
          'remote_address',
          'remote_instance',
        ),
      ),
    },
    {
      // Directory of published ports: which container of an instance a host port leads to.
      record: 'outpost:peer:published_port',
      expr: promql(
        uniqueBy(
          renamed('max by (instance, container, host_port) (outpost_published_port_info)', [
            ['port', 'host_port'],
            ['remote_instance', 'instance'],
            ['remote_container', 'container'],
          ]),
          'remote_instance, port',
          'remote_container',
        ),
      ),
    },
    {
      // Directory of compose services: which service of which project a container of an instance is.
      record: 'outpost:peer:compose_service',
      expr: promql(
        renamed('max by (instance, container, compose_project, compose_service) (outpost_container_info{compose_service!=""})', [
          ['remote_instance', 'instance'],
          ['peer', 'container'],
          ['service', 'compose_service'],
          ['project', 'compose_project'],
        ]),
      ),
    },
    {
      // Connections counted in the window, however short, per series of the exporter.
      record: 'outpost:container_tcp_connections:window',
      expr: promql(inWindow('container_tcp_connections_total')),
    },
    {
      record: 'outpost:container_tcp_unexpected_connections:window',
      expr: promql(inWindow('container_tcp_unexpected_connections_total')),
    },
    {
      // Connects that failed in the window (refused, unreachable, timed out), per series.
      record: 'outpost:container_tcp_connect_failures:window',
      expr: promql(inWindow('container_tcp_connect_failures_total', c.connectFailuresWindow)),
    },
    named('outpost:container_tcp_established:named', 'container_tcp_established'),
    named('outpost:container_tcp_connections:window_named', 'outpost:container_tcp_connections:window'),
    named('outpost:container_tcp_unexpected_established:named', 'container_tcp_unexpected_established'),
    named('outpost:container_tcp_unexpected_connections:window_named', 'outpost:container_tcp_unexpected_connections:window'),
    {
      // Open connections per link now.
      record: 'outpost:link:established',
      expr: promql(byLink('outpost:container_tcp_established:named')),
    },
    {
      // Connections counted per link in the window, however short.
      record: 'outpost:link:new_connections',
      expr: promql(byLink('outpost:container_tcp_connections:window_named')),
    },
    {
      // A link is present while it has open connections or new ones in the window; its value
      // is both together. What the link map and the link alerts read.
      record: 'outpost:link:active',
      expr: promql(openOrNew('outpost:link:established', 'outpost:link:new_connections')),
    },
    // The same three, of the connections the expected-links policy does not allow.
    { record: 'outpost:link:unexpected_established', expr: promql(byLink('outpost:container_tcp_unexpected_established:named')) },
    { record: 'outpost:link:unexpected_connections', expr: promql(byLink('outpost:container_tcp_unexpected_connections:window_named')) },
    {
      // Links to a peer on another host that the container's policy allows by name
      // (outpost_policy_peer_allowed_info): its outpost saw only an address, and judged it so.
      record: 'outpost:link:allowed_across_hosts',
      expr: promql(`
        outpost:link:active{remote_instance!=""} and on (instance, container, direction, peer, port) outpost_policy_peer_allowed_info
        or
        outpost:link:active{remote_instance!=""} and on (instance, container, direction, peer) outpost_policy_peer_allowed_info{port="*"}
        or
        (
          outpost:link:active{remote_instance!=""} * on (remote_instance, peer) group_left (service, project) outpost:peer:compose_service
        ) and on (instance, container, direction, service, project, port) label_replace(outpost_policy_peer_allowed_info, "service", "$1", "peer", "(.*)")
        or
        (
          outpost:link:active{remote_instance!=""} * on (remote_instance, peer) group_left (service, project) outpost:peer:compose_service
        ) and on (instance, container, direction, service, project) label_replace(outpost_policy_peer_allowed_info{port="*"}, "service", "$1", "peer", "(.*)")`),
    },
    {
      // Unexpected links, open now or made in the window however short: what
      // OutpostUnexpectedConnection and the link map's edge colour read.
      record: 'outpost:link:unexpected',
      expr: promql(`${openOrNew('outpost:link:unexpected_established', 'outpost:link:unexpected_connections')}
        unless on (${LINK_LABELS}, job) outpost:link:allowed_across_hosts`),
    },
    // Link health: what each link carries and how well, over the health window.
    { record: 'outpost:link:sent_bytes:rate', expr: promql(byLink(`rate(container_tcp_sent_bytes_total[${c.healthWindow}])`)) },
    { record: 'outpost:link:received_bytes:rate', expr: promql(byLink(`rate(container_tcp_received_bytes_total[${c.healthWindow}])`)) },
    { record: 'outpost:link:sent_segments:rate', expr: promql(byLink(`rate(container_tcp_sent_segments_total[${c.healthWindow}])`)) },
    { record: 'outpost:link:retransmits:rate', expr: promql(byLink(`rate(container_tcp_retransmits_total[${c.healthWindow}])`)) },
    {
      // Retransmitted over sent segments, where the link sent any.
      record: 'outpost:link:retransmit_ratio',
      expr: promql(`
        outpost:link:retransmits:rate / (outpost:link:sent_segments:rate > 0)`),
    },
    {
      // The mean smoothed RTT of the link's connections (each end's, averaged).
      record: 'outpost:link:rtt_seconds',
      expr: promql(byLink('container_tcp_rtt_seconds', 'avg')),
    },
    {
      // The mean time from connect to established of the link's outbound connections (ebpf).
      record: 'outpost:link:connect_seconds:mean',
      expr: promql(`${byLink(`rate(container_tcp_connect_seconds_total[${c.healthWindow}])`)}
        /
        ${byLink(`rate(container_tcp_connections_total{direction="outbound"}[${c.healthWindow}])`)} > 0`),
    },
    {
      record: 'outpost:listener:listening',
      expr: promql(`
        sum by (instance, job, container, port) (container_tcp_listening)`),
    },
    {
      // Recorded in the same group as the links, so that their sample counts compare.
      record: 'outpost:instance:up',
      expr: promql(`
        max by (instance, job) (outpost_up)`),
    },
    {
      // Edges of the link map (asEdges). Short-lived links are edges too; the value is open
      // connections plus new ones in the window. An edge is red when the link is unexpected,
      // gray otherwise (Grafana's edge color field). Node ids are "name@instance" for containers
      // and hosts, so that the same name on two hosts is two nodes; an address is its own id.
      record: 'outpost:link_map:edge',
      expr: promql(asEdges(colored)),
    },
    // What the link map's edges carry besides their connections, under the same edge ids (the
    // dashboard joins them by id): bytes a second both ways, RTT, the retransmit ratio.
    {
      record: 'outpost:link_map:edge_traffic',
      expr: promql(asEdges((s) => `(outpost:link:sent_bytes:rate${s} + outpost:link:received_bytes:rate${s})`)),
    },
    { record: 'outpost:link_map:edge_rtt_seconds', expr: promql(asEdges((s) => `outpost:link:rtt_seconds${s}`)) },
    { record: 'outpost:link_map:edge_retransmit_ratio', expr: promql(asEdges((s) => `outpost:link:retransmit_ratio${s}`)) },
    {
      // Nodes of the link map: every container and every peer drawn (the connections of its
      // links), named (title) and placed (subtitle: its instance).
      record: 'outpost:link_map:node',
      expr: promql(`
        label_replace(
          label_replace(
            label_replace(
              sum by (instance, job, id) (
                label_replace(outpost:link_map:edge, "id", "$1", "source", "(.*)")
                or
                label_replace(outpost:link_map:edge, "id", "$1", "target", "(.*)")
              )
              or
              0 * group by (instance, job, id) (label_join(outpost_container_info, "id", "@", "container", "instance")),
              "title", "$1", "id", "(.*)@.*"
            ),
            "title", "$1", "id", "([^@]*)"
          ),
          "subtitle", "$1", "id", ".*@(.*)"
        )`),
    },
  ];

  // The picture of an instance is complete now: outpost answered, Docker answered, and the
  // exporter did not just restart. "Disappeared" alerts need all three.
  const trustworthy = `
          and on (instance) (outpost_up == 1)
          unless on (instance) (changes(process_start_time_seconds[${c.restartQuiet}]) > 0)`;
  const steady = (series: string, labels: string) => `
          (
            count_over_time(${series}[${c.steadyWindow}])
              >= on (instance) group_left ()
            ${c.steadyRatio} * count_over_time(outpost:instance:up[${c.steadyWindow}])
          )
          unless on (${labels}) ${series}
          and on (instance, container) outpost_container_info${trustworthy}`;
  const fresh = (series: string, labels: string) => `
          ${series}
          unless on (${labels}) max_over_time(${series}[${c.lookback}] offset ${c.settle})
          and on (instance) (count_over_time(outpost:instance:up[${c.lookback}] offset ${c.settle}) > 0)`;

  // The peer, and its host when the rules named it on another one.
  const PEER_TEXT = '{{ $labels.peer }}{{ if $labels.remote_instance }} (on {{ $labels.remote_instance }}){{ end }}';
  // A peer off the host: the names the container resolved to its address (container_peer_name_info), when it did.
  const RESOLVED_FROM =
    '{{ with printf "container_peer_name_info{instance=%q,container=%q,remote_address=%q}" $labels.instance $labels.container $labels.peer | query | sortByLabel "name" }} (resolved from {{ range $i, $s := . }}{{ if $i }}, {{ end }}{{ $s.Labels.name }}{{ end }}){{ end }}';
  const alerts: AlertingRule[] = [
    alert(
      c,
      'OutpostNewLink',
      'warning',
      fresh('outpost:link:active', LINK_LABELS),
      'New link {{ $labels.container }} {{ $labels.direction }} {{ $labels.peer }}:{{ $labels.port }}',
      `Container {{ $labels.container }} on {{ $labels.instance }} has an {{ $labels.direction }} connection with ${PEER_TEXT} on port {{ $labels.port }} (open now or made in the last ${c.connectionsWindow}), not seen in the ${c.lookback} before.`,
    ),
    alert(
      c,
      'OutpostLinkDisappeared',
      'warning',
      steady('outpost:link:active', LINK_LABELS),
      'Link {{ $labels.container }} {{ $labels.direction }} {{ $labels.peer }}:{{ $labels.port }} disappeared',
      `Container {{ $labels.container }} on {{ $labels.instance }} had an {{ $labels.direction }} connection with ${PEER_TEXT} on port {{ $labels.port }} through the last ${c.steadyWindow}, and has had none open or new for ${c.connectionsWindow}.`,
    ),
    alert(
      c,
      'OutpostUnexpectedConnection',
      c.unexpectedSeverity,
      `
          outpost:link:unexpected`,
      'Unexpected connection {{ $labels.container }} {{ $labels.direction }} {{ $labels.peer }}:{{ $labels.port }}',
      `Container {{ $labels.container }} on {{ $labels.instance }} has an {{ $labels.direction }} connection with ${PEER_TEXT}${RESOLVED_FROM} on port {{ $labels.port }} (open now or made in the last ${c.connectionsWindow}) that the expected-links policy does not allow. /policy on the exporter shows the rules in force.`,
      undefined,
      {
        // The link's events on its exporter: which process made each connection, which rules refused it.
        events_url: `${c.eventsScheme}://{{ $labels.instance }}/events?container={{ $labels.container | urlquery }}&direction={{ $labels.direction }}&peer={{ $labels.peer | urlquery }}&port={{ $labels.port | urlquery }}`,
      },
    ),
    alert(
      c,
      'OutpostPolicyReloadFailed',
      'warning',
      `
          outpost_policy_last_reload_success == 0`,
      'outpost on {{ $labels.instance }} could not reload its policy file',
      `The last edit of {{ $labels.file }} on {{ $labels.instance }} did not load (the exporter's log says why) for ${c.downFor}; the rules loaded before stay in force.`,
      c.downFor,
    ),
    alert(
      c,
      'OutpostPolicyLabelErrors',
      'warning',
      `
          outpost_policy_label_errors > 0`,
      'Container {{ $labels.container }} has outpost.allow labels that do not parse',
      'Container {{ $labels.container }} on {{ $labels.instance }} has {{ $value }} entries in its outpost.allow.* labels that do not parse; each allows nothing, so its links may show as unexpected. /policy on the exporter names them.',
    ),
    alert(
      c,
      'OutpostNewListeningPort',
      'warning',
      fresh('outpost:listener:listening', LISTENER_LABELS),
      'Container {{ $labels.container }} listens on new port {{ $labels.port }}',
      `Container {{ $labels.container }} on {{ $labels.instance }} listens on port {{ $labels.port }}, not seen in the ${c.lookback} before.`,
    ),
    alert(
      c,
      'OutpostListeningPortClosed',
      'warning',
      steady('outpost:listener:listening', LISTENER_LABELS),
      'Container {{ $labels.container }} stopped listening on port {{ $labels.port }}',
      `Container {{ $labels.container }} on {{ $labels.instance }} listened on port {{ $labels.port }} through the last ${c.steadyWindow} and is still running, but listens there no more.`,
    ),
    alert(
      c,
      'OutpostCloseWaitPileUp',
      'warning',
      `
          container_tcp_sockets{state="close_wait"} > ${c.closeWaitThreshold}`,
      'Container {{ $labels.container }} has {{ $value }} sockets in CLOSE_WAIT',
      `Container {{ $labels.container }} on {{ $labels.instance }} has had more than ${c.closeWaitThreshold} sockets in CLOSE_WAIT for ${c.closeWaitFor}: its peers closed and it did not. It may be leaking connections.`,
      c.closeWaitFor,
    ),
    alert(
      c,
      'OutpostConnectFailures',
      'warning',
      `${byLink('outpost:container_tcp_connect_failures:window', 'sum', ', reason')}
        >= ${c.connectFailuresThreshold}`,
      'Container {{ $labels.container }} failed {{ $value }} connects to {{ $labels.peer }}:{{ $labels.port }} ({{ $labels.reason }})',
      `Container {{ $labels.container }} on {{ $labels.instance }} failed {{ $value }} connects to {{ $labels.peer }} on port {{ $labels.port }} in the last ${c.connectFailuresWindow}, {{ $labels.reason }} (refused: nothing listens there; timeout: no answer, dropped on the way; unreachable: no route; aborted: the process gave up first). Counted by the ebpf source only.`,
    ),
    alert(
      c,
      'OutpostLinkRetransmits',
      'warning',
      `
          outpost:link:retransmit_ratio > ${c.retransmitRatio}
          and on (${LINK_LABELS}, job) outpost:link:sent_segments:rate >= ${c.retransmitMinSegments}`,
      'Link {{ $labels.container }} {{ $labels.direction }} {{ $labels.peer }}:{{ $labels.port }} retransmits {{ $value | humanizePercentage }} of its segments',
      `Container {{ $labels.container }} on {{ $labels.instance }} has retransmitted {{ $value | humanizePercentage }} of the segments it sent on its {{ $labels.direction }} link with ${PEER_TEXT} port {{ $labels.port }} for ${c.retransmitFor} (over ${c.retransmitRatio * 100} %): packets are lost on the way, or the peer is overloaded.`,
      c.retransmitFor,
    ),
    alert(
      c,
      'OutpostLinkSlow',
      'warning',
      `
          label_replace(
            outpost:link:rtt_seconds > ${c.slowFloorSeconds}
            and on (${LINK_LABELS}, job)
            outpost:link:rtt_seconds > ${c.slowFactor} * avg_over_time(outpost:link:rtt_seconds[${c.slowBaseline}] offset ${c.slowFor}),
            "measure", "round-trip time", "", ""
          )
          or
          label_replace(
            outpost:link:connect_seconds:mean > ${c.slowFloorSeconds}
            and on (${LINK_LABELS}, job)
            outpost:link:connect_seconds:mean > ${c.slowFactor} * avg_over_time(outpost:link:connect_seconds:mean[${c.slowBaseline}] offset ${c.slowFor}),
            "measure", "connect time", "", ""
          )`,
      'Link {{ $labels.container }} {{ $labels.direction }} {{ $labels.peer }}:{{ $labels.port }} is slow: {{ $labels.measure }} {{ $value | humanizeDuration }}',
      `The {{ $labels.measure }} of container {{ $labels.container }} on {{ $labels.instance }} with ${PEER_TEXT} port {{ $labels.port }} ({{ $labels.direction }}) is {{ $value | humanizeDuration }}, over ${c.slowFactor} times its mean of the ${c.slowBaseline} before, for ${c.slowFor}.`,
      c.slowFor,
    ),
    alert(
      c,
      'OutpostDown',
      'critical',
      `
          up{${c.upSelector}} == 0`,
      'outpost on {{ $labels.instance }} is down',
      `Prometheus could not scrape outpost on {{ $labels.instance }} for ${c.downFor}: container links there are not watched.`,
      c.downFor,
    ),
    alert(
      c,
      'OutpostDockerUnreachable',
      'critical',
      `
          outpost_up == 0`,
      'outpost on {{ $labels.instance }} cannot reach the Docker API',
      `outpost on {{ $labels.instance }} answers but has not reached the Docker API for ${c.downFor}: container links there are not watched.`,
      c.downFor,
    ),
  ];

  return { groups: [{ name: 'outpost', interval: c.interval, rules: [...records, ...alerts] }] };
}

export function rulesYaml(overrides: Partial<RulesConfig> = {}): string {
  return `# Generated by \`npm run grafana\` from grafana/generate/rules.ts; edit that, not this.\n${stringify(buildRules(overrides), { lineWidth: 0 })}`;
}
