/** The knobs of the shipped rules; docs/map.md "Dashboard and alerts" explains each one. */
export interface RulesConfig {
  /** How far back a link or listening port must be absent for it to count as new. */
  lookback: string;
  /** How recent a link may be and still be "new": the look-back window ends this long ago. */
  settle: string;
  /** The window over which a link or port must have been present to be "steady". */
  steadyWindow: string;
  /** Share of the steady window's evaluations in which it must have been present. */
  steadyRatio: number;
  /** How long after an exporter restart "disappeared" alerts stay quiet. */
  restartQuiet: string;
  /**
   * A link is present while it has open connections or new ones counted in this window: a link
   * made of short connections used less often than this comes and goes.
   */
  connectionsWindow: string;
  /** Severity of OutpostUnexpectedConnection. */
  unexpectedSeverity: string;
  closeWaitThreshold: number;
  closeWaitFor: string;
  /**
   * OutpostConnectFailures: this many failed connects from one container to one peer and port
   * within the window (container_tcp_connect_failures_total, counted by the ebpf source only).
   */
  connectFailuresThreshold: number;
  connectFailuresWindow: string;
  /** The window of the link health rates (bytes, segments, retransmits, RTT, connect time). */
  healthWindow: string;
  /** OutpostLinkRetransmits: retransmitted over sent segments above this, on a link sending at least retransmitMinSegments a second, for retransmitFor. */
  retransmitRatio: number;
  retransmitMinSegments: number;
  retransmitFor: string;
  /**
   * OutpostLinkSlow: a link's RTT or mean connect time above slowFactor times its own mean over
   * slowBaseline (ending slowFor ago), and above slowFloorSeconds (below it, a ×3 is noise), for slowFor.
   */
  slowFactor: number;
  slowBaseline: string;
  slowFloorSeconds: number;
  slowFor: string;
  downFor: string;
  /** Selects outpost's scrape target in `up`. */
  upSelector: string;
  /** Where runbook sections live; each alert links to #<alertname in lower case>. */
  runbookUrl: string;
  /** How the alerts' links reach an exporter's /events: http, or https when --web.config.file serves TLS. */
  eventsScheme: 'http' | 'https';
  /** Evaluation interval of the rule group. */
  interval: string;
}

export const DEFAULT_RULES_CONFIG: RulesConfig = {
  lookback: '1d',
  settle: '5m',
  steadyWindow: '1h',
  steadyRatio: 0.9,
  restartQuiet: '10m',
  connectionsWindow: '5m',
  unexpectedSeverity: 'critical',
  closeWaitThreshold: 50,
  closeWaitFor: '10m',
  connectFailuresThreshold: 10,
  connectFailuresWindow: '5m',
  healthWindow: '5m',
  retransmitRatio: 0.02,
  retransmitMinSegments: 10,
  retransmitFor: '10m',
  slowFactor: 3,
  slowBaseline: '1d',
  slowFloorSeconds: 0.005,
  slowFor: '10m',
  downFor: '5m',
  upSelector: 'job="outpost"',
  runbookUrl: 'https://github.com/outpost-exporter/outpost/blob/main/docs/runbook.md',
  eventsScheme: 'http',
  interval: '1m',
};
