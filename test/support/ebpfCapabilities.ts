/** What the ebpf source can see with every program loaded, sorted: outpost_source_capability_info's values. */
export const EVERY_EBPF_CAPABILITY = [
  'connect_failures',
  'connection_events',
  'socket_cookies',
  'socket_processes',
  'sockets',
  'sockets_opened_before_start',
  'time_wait_events',
] as const;
