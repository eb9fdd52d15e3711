import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as NodeGraphPanel } from '@grafana/grafana-foundation-sdk/nodegraph';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { LINK_LABELS } from './rules.js';

/** Every panel queries the datasource picked in the variable, so file provisioning needs no __inputs. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
export const DASHBOARD_UID = 'outpost-links';

const hostAndContainer = 'instance=~"$instance", container=~"$container"';

function instant(refId: string, expr: string): DataqueryBuilder {
  return new DataqueryBuilder().refId(refId).datasource(DATASOURCE).expr(expr).instant().format(PromQueryFormat.Table);
}

function range(refId: string, expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().refId(refId).datasource(DATASOURCE).expr(expr).range().legendFormat(legend);
}

/** Table columns of an instant query: drop the timestamp, give the value a name. */
function organize(valueName: string, extra: Record<string, string> = {}) {
  return {
    id: 'organize',
    options: {
      excludeByName: { Time: true },
      renameByName: { Value: valueName, 'Value #A': valueName, 'Value #B': valueName, ...extra },
    },
  };
}

export function buildDashboard(): Dashboard {
  // The link map: nodes (A), edges with their connections (B), and what each edge carries
  // (C–E, present only for edges drawn), joined into one frame of edges by id. The node graph
  // finds its fields by name, which a rename (organize) does not change, only the name shown
  // (grafana/grafana#54844): each value is copied into a field of the name it needs (an alias).
  const named = (refId: string, name: string) => ({
    id: 'calculateField',
    filter: { id: 'byRefId', options: refId },
    options: { mode: 'binary', binary: { left: `Value #${refId}`, operator: '*', right: '1' }, alias: name },
  });
  const edgesDrawn = 'outpost:link_map:edge{instance=~"$instance"}';
  const edgeFigure = (refId: string, record: string) =>
    instant(refId, `sum by (id) (${record}{instance=~"$instance"} and on (id) ${edgesDrawn})`);
  const linkMap = new NodeGraphPanel()
    .title('Link map')
    .description(
      'Containers (and the peers they talk to) as nodes; links as edges: source → target → port, with the connections open now plus those made in the last connections window (short-lived links included), and the bytes a second both ways; a click on an edge shows its RTT and retransmit ratio. Red edges: links the expected-links policy does not allow.',
    )
    .datasource(DATASOURCE)
    .height(14)
    .span(24)
    .withTarget(instant('A', 'outpost:link_map:node{instance=~"$instance"}'))
    .withTarget(instant('B', `label_replace(${edgesDrawn}, "detail__port", "$1", "port", "(.*)")`))
    .withTarget(edgeFigure('C', 'outpost:link_map:edge_traffic'))
    .withTarget(edgeFigure('D', 'outpost:link_map:edge_rtt_seconds'))
    .withTarget(edgeFigure('E', 'outpost:link_map:edge_retransmit_ratio'))
    .withTransformation(named('A', 'mainstat'))
    .withTransformation(named('B', 'mainstat'))
    .withTransformation(named('C', 'secondarystat'))
    .withTransformation(named('D', 'detail__rtt'))
    .withTransformation(named('E', 'detail__retransmit_ratio'))
    .withTransformation({ id: 'joinByField', options: { byField: 'id', mode: 'outer' }, filter: { id: 'byRefId', options: '/^[B-E]$/' } })
    .withTransformation({
      id: 'filterFieldsByName',
      options: { exclude: { pattern: '^(Time.*|Value #[A-E]|instance|job|__name__)$' } },
    })
    .overrideByName('secondarystat', [
      { id: 'unit', value: 'Bps' },
      { id: 'displayName', value: 'Traffic' },
    ])
    .overrideByName('detail__rtt', [
      { id: 'unit', value: 's' },
      { id: 'displayName', value: 'RTT' },
    ])
    .overrideByName('detail__retransmit_ratio', [
      { id: 'unit', value: 'percentunit' },
      { id: 'displayName', value: 'Retransmitted' },
    ]);

  const listening = new TablePanel()
    .title('Listening ports')
    .description('LISTEN sockets per container, address and port (0.0.0.0 and :: are every address).')
    .datasource(DATASOURCE)
    .height(9)
    .span(12)
    .withTarget(instant('A', `sum by (container, address, port) (container_tcp_listening{${hostAndContainer}})`))
    .withTransformation(organize('sockets'));

  const newLinks = new TablePanel()
    .title('New links in the selected range')
    .description('Links (open, or made of short connections) seen in the selected range and not in the range of the same length before it.')
    .datasource(DATASOURCE)
    .height(9)
    .span(12)
    .withTarget(
      instant(
        'A',
        `max_over_time(outpost:link:active{${hostAndContainer}}[$__range])\n` +
          `unless on (${LINK_LABELS}) max_over_time(outpost:link:active{${hostAndContainer}}[$__range] offset $__range)`,
      ),
    )
    .withTransformation(organize('connections'))
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['job', '__name__'] } } });

  const unexpected = new TablePanel()
    .title('Unexpected links')
    .description(
      'Links the expected-links policy (outpost.allow.* labels, --policy.file) does not allow: open now or made in the last connections window, however short. Red in the link map. /policy on the exporter shows the rules.',
    )
    .datasource(DATASOURCE)
    .height(7)
    .span(24)
    .withTarget(instant('A', `outpost:link:unexpected{${hostAndContainer}}`))
    .withTransformation(organize('connections'))
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['job', '__name__'] } } });

  const established = new TimeSeriesPanel()
    .title('Established connections by peer and direction')
    .datasource(DATASOURCE)
    .height(9)
    .span(24)
    .withTarget(
      range(
        'A',
        `sum by (container, direction, peer, port) (outpost:link:established{${hostAndContainer}})`,
        '{{container}} {{direction}} {{peer}}:{{port}}',
      ),
    );

  // Events a second over the whole width: a counter's rate summed by `by`.
  const eventRate = (title: string, description: string, counter: string, by: string, legend: string) =>
    new TimeSeriesPanel()
      .title(title)
      .description(description)
      .datasource(DATASOURCE)
      .unit('cps')
      .height(9)
      .span(24)
      .withTarget(range('A', `sum by (${by}) (rate(${counter}{${hostAndContainer}}[$__rate_interval]))`, legend));
  const connectionRate = eventRate(
    'New connections per second by peer and direction',
    'Every connection counted once, however short (container_tcp_connections_total): the traffic that open connections at scrape time do not show.',
    'container_tcp_connections_total',
    'container, direction, remote_container, port',
    '{{container}} {{direction}} {{remote_container}}:{{port}}',
  );

  const link = '{{container}} {{direction}} {{peer}}:{{port}}';
  const traffic = new TimeSeriesPanel()
    .title('Traffic per link')
    .description(
      "Bytes a second each link's connections sent (positive) and received (negative), from tcp_info (container_tcp_{sent,received}_bytes_total; netlink: connections open at a scrape, ebpf: every connection). Sources: docs/metrics.md.",
    )
    .datasource(DATASOURCE)
    .unit('Bps')
    .height(9)
    .span(12)
    .withTarget(range('A', `outpost:link:sent_bytes:rate{${hostAndContainer}}`, `${link} sent`))
    .withTarget(range('B', `-outpost:link:received_bytes:rate{${hostAndContainer}}`, `${link} received`));

  // A panel of one link recording rule, a line per link.
  const perLink = (title: string, description: string, unit: string, record: string) =>
    new TimeSeriesPanel()
      .title(title)
      .description(description)
      .datasource(DATASOURCE)
      .unit(unit)
      .height(9)
      .span(12)
      .withTarget(range('A', `${record}{${hostAndContainer}}`, link));
  const retransmitRatio = perLink(
    'Retransmit ratio per link',
    'Retransmitted over sent segments (container_tcp_retransmits_total / container_tcp_sent_segments_total): loss on the way, or an overloaded peer. OutpostLinkRetransmits fires above 2 % for 10m.',
    'percentunit',
    'outpost:link:retransmit_ratio',
  );
  const rtt = perLink(
    'Round-trip time per link',
    "The smoothed RTT (tcp_info rtt) of each link's connections, the mean of its ends (container_tcp_rtt_seconds). OutpostLinkSlow fires when it triples against its own last day.",
    's',
    'outpost:link:rtt_seconds',
  );
  const connectTime = perLink(
    'Mean connect time per link',
    'Time from connect() to established of the outbound connections (container_tcp_connect_seconds_total over container_tcp_connections_total; ebpf source only).',
    's',
    'outpost:link:connect_seconds:mean',
  );

  const failures = eventRate(
    'Failed connects per second by reason',
    'Connects that failed before established (container_tcp_connect_failures_total; ebpf source only), by reason: refused, timeout, reset, unreachable, aborted, other.',
    'container_tcp_connect_failures_total',
    'container, remote_container, remote_address, port, reason',
    '{{container}} → {{remote_container}} {{remote_address}}:{{port}} {{reason}}',
  );

  const states = new TimeSeriesPanel()
    .title('Sockets by state')
    .description('Every TCP state but LISTEN and ESTABLISHED: TIME_WAIT and CLOSE_WAIT piling up show here.')
    .datasource(DATASOURCE)
    .height(9)
    .span(12)
    .withTarget(
      range(
        'A',
        `sum by (container, state) (container_tcp_sockets{${hostAndContainer}, state!~"listen|established"})`,
        '{{container}} {{state}}',
      ),
    );

  const up = new StatPanel()
    .title('outpost up')
    .description('1: the Docker API answered and the last collection ran.')
    .datasource(DATASOURCE)
    .height(9)
    .span(4)
    .withTarget(range('A', 'outpost_up{instance=~"$instance"}', '{{instance}}'));

  const duration = new TimeSeriesPanel()
    .title('Collection duration by stage')
    .datasource(DATASOURCE)
    .unit('s')
    .height(9)
    .span(8)
    .withTarget(range('A', 'outpost_collector_duration_seconds{instance=~"$instance"}', '{{instance}} {{collector}}'));

  return new DashboardBuilder('outpost: container links')
    .uid(DASHBOARD_UID)
    .description('TCP links between the containers of a Docker host, from outpost.')
    .tags(['outpost', 'docker', 'network'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('instance')
        .label('Docker host')
        .datasource(DATASOURCE)
        .query('label_values(outpost_up, instance)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc),
    )
    .withVariable(
      new QueryVariableBuilder('container')
        .label('Container')
        .datasource(DATASOURCE)
        .query('label_values(outpost_container_info{instance=~"$instance"}, container)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )
    .withRow(new RowBuilder('Links'))
    .withPanel(linkMap)
    .withPanel(unexpected)
    .withPanel(listening)
    .withPanel(newLinks)
    .withPanel(established)
    .withPanel(connectionRate)
    .withRow(new RowBuilder('Link health'))
    .withPanel(traffic)
    .withPanel(retransmitRatio)
    .withPanel(rtt)
    .withPanel(connectTime)
    .withPanel(failures)
    .withRow(new RowBuilder('Sockets and exporter'))
    .withPanel(states)
    .withPanel(up)
    .withPanel(duration)
    .build();
}

export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
