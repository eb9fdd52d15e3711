// SPDX-License-Identifier: GPL-2.0
/*
 * outpost's eBPF socket source (CO-RE: built once, loaded on any kernel with BTF).
 *
 * Every TCP socket outpost knows of carries a record of its own in `known`, socket-local storage
 * that the kernel frees with the socket. A read lists them in one pass of that map's iterator:
 * the cost grows with the sockets themselves, not with namespaces x the TCP hash, nor with every
 * open file on the host.
 * - seed_known (iter/task_file) runs once, at load: it gives every TCP socket some file already
 *   holds its record, with its holder.
 * - on_state_change (tp_btf/inet_sock_set_state) gives one to every socket that changes state
 *   after that: connect (its holder: the process connecting), listen (the process listening),
 *   accept (the listener's record, cloned by the kernel to the new socket: BPF_F_CLONE), and
 *   sockets no file holds (the accept queue, orphans after close). It sends to `events` each
 *   connection established and each connect that failed, so that connections shorter than a
 *   scrape are counted.
 * - listed_sockets (iter/bpf_sk_storage_map) reads each known socket's state and addresses as
 *   they are at the read, as sock_diag would.
 * - A socket replaced by a timewait minisock (TIME_WAIT, or FIN_WAIT2 of an orphan) has no
 *   storage: it is sent to `events` with the time it began, and user space keeps it until the
 *   kernel's 60 s are over or its 4-tuple is in use again. (fentry on the timewait functions would
 *   be exact, but needs BPF trampolines, which not every kernel allows: this one refuses them.)
 *
 * Every socket goes out as the same 72-byte record (struct socket_record); the first 64 bytes are
 * laid out as the sock_diag addon's, so one decoder reads both.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_CLOSING 11
#define RCV_SHUTDOWN 1

struct socket_record {
  __u8 family; /* 4 | 6 */
  __u8 state;
  __u16 local_port;
  __u16 remote_port;
  __u8 old_state; /* events: the state left */
  __u8 pad0;
  __u32 inode;
  __u32 pid_namespace; /* of the holder, or of the process that connected: its container, after it exited */
  __u8 local_address[16];
  __u8 remote_address[16];
  __u64 time_ns; /* timewait entries: when it began (CLOCK_MONOTONIC); the sock_diag record's cgroup id */
  __u64 cookie;
  __u32 netns;
  __u32 holder; /* tgid of the process that held it at load, or connected or listened; 0 unknown */
};

/* Each known socket's record: 4-tuple as last changed, cookie, holder. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
  __type(key, int);
  __type(value, struct socket_record);
} known SEC(".maps");

/*
 * 1 MB: 13,000 events, seconds of 1,000 connections a second, where the thread drains it as they
 * come. It is mapped twice into outpost (so that records wrap around): each MB is 2 of its RSS.
 */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* What could not be kept or sent, read by user space: [0] a socket not tracked (no memory for its
 * record), [1] events lost. */
#define COUNTER_TRACKED_FULL 0
#define COUNTER_EVENTS_LOST 1
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *n = bpf_map_lookup_elem(&counters, &which);
  if (n) __sync_fetch_and_add(n, 1);
}

static __always_inline void fill_common(struct socket_record *r, const struct sock_common *c) {
  __u16 family = BPF_CORE_READ(c, skc_family);
  r->family = family == AF_INET6 ? 6 : 4;
  r->local_port = BPF_CORE_READ(c, skc_num);
  r->remote_port = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
  r->netns = BPF_CORE_READ(c, skc_net.net, ns.inum);
  if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&r->local_address, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&r->remote_address, c, skc_v6_daddr.in6_u.u6_addr8);
  } else {
    BPF_CORE_READ_INTO(&r->local_address, c, skc_rcv_saddr);
    BPF_CORE_READ_INTO(&r->remote_address, c, skc_daddr);
  }
}

static __always_inline int is_tcp(const struct sock *sk) {
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  return (family == AF_INET || family == AF_INET6) && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP &&
         BPF_CORE_READ(sk, sk_type) == SOCK_STREAM;
}

/* The record of a socket, made if it has none yet (NULL: no memory, or the socket is being freed). */
static __always_inline struct socket_record *record_of(const struct sock *sk) {
  struct socket_record *r = bpf_sk_storage_get(&known, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!r) count(COUNTER_TRACKED_FULL);
  return r;
}

static __always_inline void set_holder(struct socket_record *r, struct task_struct *task) {
  r->holder = BPF_CORE_READ(task, tgid);
  r->pid_namespace = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
}

SEC("iter/task_file")
int seed_known(struct bpf_iter__task_file *ctx) {
  struct file *file = ctx->file;
  struct task_struct *task = ctx->task;
  if (!file || !task) return 0;
  /* NULL for any file that is not a socket. */
  struct socket *socket = bpf_sock_from_file(file);
  if (!socket) return 0;
  struct sock *sk = socket->sk;
  if (!sk || !is_tcp(sk)) return 0;
  struct socket_record *r = record_of(sk);
  /* A descriptor shared by processes: its first holder keeps it. */
  if (!r || r->holder) return 0;
  fill_common(r, &sk->__sk_common);
  r->state = BPF_CORE_READ(sk, __sk_common.skc_state);
  r->cookie = bpf_get_socket_cookie(sk);
  set_holder(r, task);
  return 0;
}

SEC("iter/bpf_sk_storage_map")
int listed_sockets(struct bpf_iter__bpf_sk_storage_map *ctx) {
  struct sock *sk = ctx->sk;
  struct socket_record *known_record = ctx->value;
  if (!sk || !known_record) return 0;
  /*
   * A closed socket (never connected, or whose connection a timewait socket took over while its
   * process still held it) is in no table of the kernel's: not listed, as by sock_diag. Its
   * connection, in TIME_WAIT, was sent as an event under the same cookie.
   */
  __u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
  if (state == TCP_CLOSE) return 0;
  /* Read straight from the trusted sock (plain loads, no helper call a field): the cost of a read. */
  const struct sock_common *c = &sk->__sk_common;
  struct socket_record r = {};
  r.family = c->skc_family == AF_INET6 ? 6 : 4;
  r.state = state;
  r.local_port = c->skc_num;
  r.remote_port = bpf_ntohs(c->skc_dport);
  r.netns = known_record->netns; /* a socket's for its life: kept at its first state change */
  if (c->skc_family == AF_INET6) {
    __builtin_memcpy(r.local_address, c->skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
    __builtin_memcpy(r.remote_address, c->skc_v6_daddr.in6_u.u6_addr8, 16);
  } else {
    __builtin_memcpy(r.local_address, &c->skc_rcv_saddr, 4);
    __builtin_memcpy(r.remote_address, &c->skc_daddr, 4);
  }
  r.cookie = known_record->cookie;
  r.holder = known_record->holder;
  r.pid_namespace = known_record->pid_namespace;
  /*
   * As sock_diag: the inode of the socket's file, 0 once no file holds it (sock_i_ino). Read once
   * and kept (a socket's file does not change): two cache misses fewer a socket on later reads.
   */
  struct socket *socket = sk->sk_socket;
  if (socket) {
    if (!known_record->inode) {
      struct socket_alloc *alloc = (void *)socket - bpf_core_field_offset(struct socket_alloc, socket);
      known_record->inode = BPF_CORE_READ(alloc, vfs_inode.i_ino);
    }
    r.inode = known_record->inode;
  }
  bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
  return 0;
}

/*
 * A timewait minisock took this socket's place (tcp_time_wait): it is closed from one of these
 * states, out of the hash table already and without an error. A reset sets sk_err first.
 */
static __always_inline int entered_time_wait(const struct sock *sk, int oldstate) {
  if (oldstate != TCP_FIN_WAIT1 && oldstate != TCP_FIN_WAIT2 && oldstate != TCP_CLOSING) return 0;
  return BPF_CORE_READ(sk, __sk_common.skc_nulls_node.pprev) == NULL && BPF_CORE_READ(sk, sk_err) == 0;
}

static __always_inline void send_event(const struct socket_record *r) {
  struct socket_record *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count(COUNTER_EVENTS_LOST);
    return;
  }
  __builtin_memcpy(e, r, sizeof(*e));
  bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state_change, const struct sock *sk, const int oldstate, const int newstate) {
  if (!is_tcp(sk)) return 0;

  if (newstate == TCP_CLOSE) {
    /* Closed, its local port is 0 already: what it was comes from its record. */
    struct socket_record *known_record = bpf_sk_storage_get(&known, (struct sock *)sk, 0, 0);
    if (!known_record) return 0;
    struct socket_record r = *known_record;
    r.state = newstate;
    r.old_state = oldstate;
    r.inode = 0; /* no file holds what it becomes */
    if (oldstate == TCP_SYN_SENT) send_event(&r); /* a connect that failed */
    if (entered_time_wait(sk, oldstate)) {
      /* Its storage goes with the sock: user space keeps it, and ends it. */
      r.state = BPF_CORE_READ(sk, sk_shutdown) & RCV_SHUTDOWN ? TCP_TIME_WAIT : TCP_FIN_WAIT2;
      r.time_ns = bpf_ktime_get_ns();
      send_event(&r);
    }
    return 0;
  }

  /* An accepted socket's record starts as its listener's (cloned): the holder is kept. */
  struct socket_record *r = record_of(sk);
  struct socket_record untracked = {};
  if (!r) r = &untracked; /* still sent, if it is an event */
  __u64 cookie = bpf_get_socket_cookie((void *)sk);
  /* A new record, or the listener's cloned: the inode kept is not this socket's. */
  if (r->cookie != cookie) r->inode = 0;
  r->cookie = cookie;
  fill_common(r, &sk->__sk_common);
  r->state = newstate;
  r->old_state = oldstate;
  /* connect() and listen() set these states in the holder's own context. */
  if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) set_holder(r, (void *)bpf_get_current_task());
  if (newstate == TCP_ESTABLISHED) send_event(r);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
