/** What the ebpf source can see with every program loaded, sorted: outpost_source_capability_info's values. */
export const EVERY_EBPF_CAPABILITY = [
  'closed_figures',
  'connect_failure_reasons',
  'connect_failures',
  'connect_times',
  'connection_events',
  'socket_cookies',
  'socket_figures',
  'socket_processes',
  'sockets',
  'sockets_opened_before_start',
  'time_wait_events',
] as const;
