// SPDX-License-Identifier: GPL-2.0
/*
 * outpost's eBPF socket source (CO-RE: built once, loaded on every kernel of the matrix in
 * docs/kernels.md).
 *
 * Every TCP socket outpost knows of has an entry in `sockets`, a hash keyed by the address of its
 * struct sock; the entry holds what the kernel will not say later (its holder, its namespace, its
 * cookie). A read lists them in one pass over that hash, in every namespace at once: the cost grows
 * with the sockets themselves, not with namespaces x the TCP hash, nor with every open file.
 *
 * Written for the verifiers of stock and hardened kernels alike (docs/kernels.md): helpers are
 * called only on pointers every kernel trusts (tp_btf arguments); a pointer walked from another, or
 * a socket known by its address, is only read (BPF_CORE_READ, bpf_probe_read_kernel); no map-element
 * iterator, no trampoline.
 * - on_state_change (tp_btf/inet_sock_set_state, required) keeps `sockets`: an entry is made when a
 *   socket starts a life (connect: its holder, the process connecting; listen: the process
 *   listening; accept: its listener's holder, from `listeners`) and removed when it closes. It sends
 *   to `events` each connection established, each connect that failed and each socket that entered
 *   TIME_WAIT, so that connections shorter than a scrape are counted.
 * - on_state_change_skipped and on_state_change_skipped_twice (the same tracepoint, required) handle
 *   the changes the kernel skipped on_state_change for (made while it ran on that CPU), and those it
 *   skipped both for.
 * - list_sockets (iter/bpf_map, required) runs once per read: on its first call it visits
 *   `sockets` (bpf_for_each_map_elem) and writes each live socket's record, read from the sock as it
 *   is now, into `listing`, which user space reads through mmap; the count goes out on the iterator.
 * - seed_sockets (iter/task_file, optional) runs once, at load: it gives every TCP socket some file
 *   already holds an entry, with its holder, and each connection waiting in a listener's accept
 *   queue the listener's. Without it, sockets opened before outpost are listed once they change state.
 * - A socket replaced by a timewait minisock (TIME_WAIT, or FIN_WAIT2 of an orphan) leaves `sockets`:
 *   it is sent to `events` with the time it began, and user space keeps it until the kernel's 60 s
 *   are over or its 4-tuple is in use again.
 *
 * - dns_answers (tp_btf/netif_receive_skb, optional) reads the names the containers resolve: of each
 *   packet a device of any namespace receives, it reads the IP and UDP/TCP headers only, and sends
 *   to `dns` (up to DNS_COPY bytes, from the IP header on, with the namespace) a packet from port 53
 *   or from Docker's embedded DNS server (127.0.0.11, whose answers may leave its socket from
 *   another port); no other packet's payload is read. It needs nothing the others do not; without
 *   it, outpost reads the answers with a packet socket in each namespace (CAP_SYS_ADMIN, CAP_NET_RAW).
 *
 * Every socket goes out as the same 128-byte record (struct socket_record); the first 104 bytes are
 * laid out as the sock_diag addon's, so one decoder reads both. Each record carries the socket's
 * figures as tcp_info would give them (bytes acked and received, segments sent and retransmitted, smoothed
 * RTT), read from the tcp_sock: at a listing as they are now, in an event as they were at the
 * change (a closed connection's last ones). Sockets that close from a connection state other than
 * into TIME_WAIT are sent too, so that no connection's last figures are lost; a connect that failed
 * carries the socket's error, and an outbound connection the time from connect to established.
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
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_CLOSING 11
#define RCV_SHUTDOWN 1
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP 17
#define DNS_PORT 53
#define DOCKER_DNS 0x7f00000b /* 127.0.0.11 */
/* Room for a DNS packet, from its IP header: up to DNS_COPY - 1 bytes are copied, every UDP answer
 * (EDNS rarely passes 1,232) and most over TCP. A power of two: the copy's length is masked with it. */
#define DNS_COPY 4096

/* Sockets known at once; past it a socket is not listed, and counted (counters[0]). */
#define MAX_SOCKETS 65536
/* Connections waiting in one listener's accept queue that the seeding walk gives an entry (somaxconn is 4096 by default: a queue of more at outpost's start is rare). */
#define ACCEPT_QUEUE_SEEDED 256

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
  __u64 time_ns; /* timewait events: when it began (CLOCK_MONOTONIC); in `sockets` while connecting: when connect began; the sock_diag record's cgroup id */
  __u64 cookie;
  __u64 bytes_acked;
  __u64 bytes_received;
  __u32 total_retrans;
  __u32 srtt_us;
  __u32 connect_us; /* outbound: connect to established; 0 else */
  __u8 has_figures; /* 1: the four above were read from the tcp_sock */
  __u8 error;       /* a connect that failed: sk_err at its close (ECONNREFUSED, ETIMEDOUT, ...); 0 closed by its process */
  __u16 pad1;
  __u32 segs_out; /* segments sent, retransmitted ones included (tcp_info segs_out) */
  __u32 pad2;
  __u32 netns;
  __u32 holder; /* tgid of the process that held it at load, or connected or listened; 0 unknown */
  char comm[16]; /* that process's name (its task's comm) as it was then: known after it exited */
};

/* Each known socket, by the address of its struct sock: its record as of its last state change. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_SOCKETS);
  __type(key, __u64);
  __type(value, struct socket_record);
} sockets SEC(".maps");

/* Who listens on a port of a namespace: the holder an accepted socket inherits. */
struct listener_id {
  __u32 netns;
  __u32 port;
};
struct listener_entry {
  __u64 sock; /* the listening sock: only it removes the entry */
  __u32 holder;
  __u32 pid_namespace;
  char comm[16];
};
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct listener_id);
  __type(value, struct listener_entry);
} listeners SEC(".maps");

/* One read's records, written by list_sockets and read by user space through mmap. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, MAX_SOCKETS);
  __type(key, __u32);
  __type(value, struct socket_record);
} listing SEC(".maps");

/*
 * 1 MB: 7,700 events (128 bytes and a header each), seconds of 1,000 connections a second; the
 * thread drains it every 100 ms, and at once when it is half full (wake_when_half_full). It is
 * mapped twice into outpost (so that records wrap around): each MB is 2 of its RSS.
 */
#define EVENTS_RING_SIZE (1024 * 1024)
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, EVENTS_RING_SIZE);
} events SEC(".maps");

/* A DNS packet a namespace received: the layout of native/dns_answers.c's records (16-byte header), but
 * for the namespace in place of its zero and the kernel's monotonic clock in place of the wall clock. */
struct dns_packet {
  __u32 length; /* bytes of `packet` copied */
  __u32 netns;
  __u64 time_ns; /* bpf_ktime_get_ns() when it was received */
  __u8 packet[DNS_COPY];
};

/* 1 MB: about 7,000 DNS answers of 130 bytes (each sent at its length) between two wake-ups of
 * the thread that drains it, which wakes at each. Mapped twice into outpost, as `events`. */
#define DNS_RING_SIZE (1024 * 1024)
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, DNS_RING_SIZE);
} dns SEC(".maps");

/* What could not be kept or sent, read by user space: [0] a socket not tracked (`sockets` full),
 * [1] events lost, [2] DNS packets lost (`dns` full); and [3] the state changes on_state_change was
 * skipped for that on_state_change_skipped handled in its place. */
#define COUNTER_TRACKED_FULL 0
#define COUNTER_EVENTS_LOST 1
#define COUNTER_DNS_LOST 2
#define COUNTER_MADE_UP 3
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/*
 * The ring's reader is woken only once the ring is half full: a wake-up is an inter-processor
 * interrupt, microseconds each (more in a virtual machine), where the record itself costs a few
 * hundred nanoseconds. The reader also takes what is there every 100 ms, and at every read.
 */
static __always_inline __u64 wake_when_half_full(void *ring, __u64 size) {
  return bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) > size / 2 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 which) {
  __u64 *n = bpf_map_lookup_elem(&counters, &which);
  if (n) __sync_fetch_and_add(n, 1);
}

/* Reads only (CO-RE): works on any pointer, trusted or not. */
static __always_inline void fill_common(struct socket_record *r, const struct sock_common *c) {
  __u16 family = BPF_CORE_READ(c, skc_family);
  r->family = family == AF_INET6 ? 6 : 4;
  r->local_port = BPF_CORE_READ(c, skc_num);
  r->remote_port = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
  if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&r->local_address, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&r->remote_address, c, skc_v6_daddr.in6_u.u6_addr8);
  } else {
    BPF_CORE_READ_INTO(&r->local_address, c, skc_rcv_saddr);
    BPF_CORE_READ_INTO(&r->remote_address, c, skc_daddr);
  }
}

/* The socket's figures as tcp_info gives them (tcp_get_info): reads only, so any pointer will do. */
static __always_inline void fill_figures(struct socket_record *r, const struct sock *sk) {
  const struct tcp_sock *tp = (const struct tcp_sock *)sk;
  r->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
  r->bytes_received = BPF_CORE_READ(tp, bytes_received);
  r->total_retrans = BPF_CORE_READ(tp, total_retrans);
  r->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
  r->segs_out = BPF_CORE_READ(tp, segs_out);
  r->has_figures = 1;
}

static __always_inline int is_tcp(const struct sock *sk) {
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  return (family == AF_INET || family == AF_INET6) && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP &&
         BPF_CORE_READ(sk, sk_type) == SOCK_STREAM;
}

static __always_inline __u32 netns_of(const struct sock *sk) {
  return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void set_holder(struct socket_record *r, struct task_struct *task) {
  r->holder = BPF_CORE_READ(task, tgid);
  r->pid_namespace = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
  /* Read, never handed to a helper that checks its type: a walked task is untrusted on hardened kernels. */
  BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
}

static __always_inline void add_listener(__u64 sock, const struct socket_record *r) {
  struct listener_id key = {.netns = r->netns, .port = r->local_port};
  struct listener_entry value = {.sock = sock, .holder = r->holder, .pid_namespace = r->pid_namespace};
  __builtin_memcpy(value.comm, r->comm, sizeof(value.comm));
  bpf_map_update_elem(&listeners, &key, &value, BPF_ANY);
}

/*
 * The connections a listener's accept queue holds at the seeding walk: established before the load,
 * no file holds them yet, and their accept changes no state, so nothing else would ever find them.
 * They take the listener's entry (its holder, namespace, process), the one that will accept them.
 * Read without the queue's lock, as every walked pointer here: a stale entry is dropped at a listing.
 */
static __always_inline void seed_accept_queue(const struct sock *listener, struct socket_record *r) {
  const struct inet_connection_sock *icsk = (const void *)listener;
  struct request_sock *request = BPF_CORE_READ(icsk, icsk_accept_queue.rskq_accept_head);
  for (int i = 0; i < ACCEPT_QUEUE_SEEDED && request; i++) {
    struct sock *child = BPF_CORE_READ(request, sk);
    request = BPF_CORE_READ(request, dl_next);
    if (!child || !is_tcp(child)) continue;
    fill_common(r, &child->__sk_common);
    r->state = BPF_CORE_READ(child, __sk_common.skc_state);
    r->cookie = BPF_CORE_READ(child, __sk_common.skc_cookie.counter);
    r->inode = 0; /* the listing reads it once accepted */
    __u64 key = (__u64)child;
    if (bpf_map_update_elem(&sockets, &key, r, BPF_NOEXIST) == -7 /* E2BIG */) count(COUNTER_TRACKED_FULL);
  }
}

SEC("iter/task_file")
int seed_sockets(struct bpf_iter__task_file *ctx) {
  struct file *file = ctx->file;
  struct task_struct *task = ctx->task;
  if (!file || !task) return 0;
  /* NULL for any file that is not a socket. */
  struct socket *socket = bpf_sock_from_file(file);
  if (!socket) return 0;
  /* Walked from the file: untrusted on hardened kernels, so only read, never handed to a helper. */
  struct sock *sk = BPF_CORE_READ(socket, sk);
  if (!sk || !is_tcp(sk)) return 0;
  __u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
  if (state == TCP_CLOSE) return 0; /* in no table of the kernel's: not listed, as by sock_diag */
  struct socket_record r = {};
  fill_common(&r, &sk->__sk_common);
  r.state = state;
  r.netns = netns_of(sk);
  /* 0 until something asks the kernel for it: the listing reads it again. */
  r.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
  r.inode = BPF_CORE_READ(file, f_inode, i_ino);
  set_holder(&r, task);
  __u64 key = (__u64)sk;
  /* A descriptor shared by processes: its first holder keeps it. */
  long error = bpf_map_update_elem(&sockets, &key, &r, BPF_NOEXIST);
  if (error == -7 /* E2BIG */) count(COUNTER_TRACKED_FULL);
  if (!error && state == TCP_LISTEN) {
    add_listener(key, &r);
    seed_accept_queue(sk, &r);
  }
  return 0;
}

struct listing_state {
  __u32 count;
};

/* One entry of `sockets`, checked against the sock as it is now, into `listing`. */
static long list_one(struct bpf_map *map, __u64 *key, struct socket_record *known, struct listing_state *state) {
  const struct sock *sk = (const struct sock *)*key;
  __u8 tcp_state = BPF_CORE_READ(sk, __sk_common.skc_state);
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  /*
   * An address is not a reference: a socket that closed while the seeding walk read it leaves an
   * entry behind. Closed (or freed, and so no TCP socket now), it goes; a new socket at the same
   * address replaced the entry at its first state change.
   */
  if (tcp_state == TCP_CLOSE || tcp_state == 0 || tcp_state > TCP_CLOSING || (family != AF_INET && family != AF_INET6)) {
    bpf_map_delete_elem(map, key);
    return 0;
  }
  __u32 at = state->count;
  struct socket_record *r = bpf_map_lookup_elem(&listing, &at);
  if (!r) return 1;
  fill_common(r, &sk->__sk_common);
  r->state = tcp_state;
  r->old_state = 0;
  r->time_ns = 0;
  r->netns = known->netns;
  r->holder = known->holder;
  r->pid_namespace = known->pid_namespace;
  __builtin_memcpy(r->comm, known->comm, sizeof(r->comm));
  r->connect_us = known->connect_us;
  r->error = 0;
  if (tcp_state == TCP_LISTEN) {
    r->has_figures = 0;
  } else {
    fill_figures(r, sk);
  }
  /*
   * The kernel's cookie as it is now: a socket of before the load has one only once something asked
   * (ss, netlink); an accepted socket's is set after its first state change (the request's).
   */
  __u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
  if (cookie) known->cookie = cookie;
  r->cookie = known->cookie;
  /*
   * As sock_diag: the inode of the socket's file, 0 once no file holds it (sock_i_ino). Read once
   * and kept (a socket's file does not change): fewer cache misses a socket on later reads.
   */
  r->inode = 0;
  struct socket *socket = BPF_CORE_READ(sk, sk_socket);
  if (socket) {
    if (!known->inode) {
      struct socket_alloc *alloc = (void *)socket - bpf_core_field_offset(struct socket_alloc, socket);
      known->inode = BPF_CORE_READ(alloc, vfs_inode.i_ino);
    }
    r->inode = known->inode;
  }
  state->count = at + 1;
  return 0;
}

SEC("iter/bpf_map")
int list_sockets(struct bpf_iter__bpf_map *ctx) {
  /* Any iterator would do: it is only the way to run once, in a context that may read the kernel. */
  if (ctx->meta->seq_num != 0 || !ctx->map) return 0;
  struct listing_state state = {};
  bpf_for_each_map_elem(&sockets, list_one, &state, 0);
  bpf_seq_write(ctx->meta->seq, &state.count, sizeof(state.count));
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
  bpf_ringbuf_submit(e, wake_when_half_full(&events, EVENTS_RING_SIZE));
}

/* A socket closes: what it was comes from its entry (its local port is 0 already). */
static __always_inline void on_close(const struct sock *sk, __u64 key, int oldstate) {
  struct socket_record *known = bpf_map_lookup_elem(&sockets, &key);
  if (!known) return;
  struct socket_record r = *known;
  bpf_map_delete_elem(&sockets, &key);
  if (oldstate == TCP_LISTEN) {
    struct listener_id at = {.netns = r.netns, .port = r.local_port};
    struct listener_entry *l = bpf_map_lookup_elem(&listeners, &at);
    if (l && l->sock == key) bpf_map_delete_elem(&listeners, &at);
  }
  r.state = TCP_CLOSE;
  r.old_state = oldstate;
  r.inode = 0; /* no file holds what it becomes */
  r.time_ns = 0;
  if (oldstate == TCP_SYN_SENT) {
    /* A connect that failed, with why: the kernel sets sk_err before it closes the socket. */
    r.error = BPF_CORE_READ(sk, sk_err);
    send_event(&r);
    return;
  }
  if (oldstate == TCP_LISTEN || oldstate == TCP_SYN_RECV) return; /* no connection */
  fill_figures(&r, sk); /* its last figures */
  if (entered_time_wait(sk, oldstate)) {
    /* It leaves `sockets`: user space keeps it, and ends it. */
    r.state = BPF_CORE_READ(sk, sk_shutdown) & RCV_SHUTDOWN ? TCP_TIME_WAIT : TCP_FIN_WAIT2;
    r.time_ns = bpf_ktime_get_ns();
  }
  send_event(&r); /* closed, or into TIME_WAIT */
}

static __always_inline void handle_state_change(const struct sock *sk, int oldstate, int newstate) {
  if (!is_tcp(sk)) return;
  __u64 key = (__u64)sk;
  if (newstate == TCP_CLOSE) {
    on_close(sk, key, oldstate);
    return;
  }

  /* A life starts at connect or listen (from CLOSE), or as a listener's accepted child. */
  int accepted = oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV;
  struct socket_record *r = bpf_map_lookup_elem(&sockets, &key);
  struct socket_record fresh = {};
  if (!r || oldstate == TCP_CLOSE || accepted) {
    fresh.netns = netns_of(sk);
    /* An accepted socket's cookie is set after this (inet_csk_clone_lock: the request's): taken at its next change. */
    if (!accepted) fresh.cookie = bpf_get_socket_cookie((void *)sk);
    if (accepted) {
      struct listener_id at = {.netns = fresh.netns, .port = BPF_CORE_READ(sk, __sk_common.skc_num)};
      struct listener_entry *l = bpf_map_lookup_elem(&listeners, &at);
      if (l) {
        fresh.holder = l->holder;
        fresh.pid_namespace = l->pid_namespace;
        __builtin_memcpy(fresh.comm, l->comm, sizeof(fresh.comm));
      }
    }
    /* connect() and listen() set these states in the holder's own context. */
    if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) set_holder(&fresh, (void *)bpf_get_current_task());
    if (newstate == TCP_SYN_SENT) fresh.time_ns = bpf_ktime_get_ns(); /* the connect's start */
    if (bpf_map_update_elem(&sockets, &key, &fresh, BPF_ANY)) count(COUNTER_TRACKED_FULL);
    r = bpf_map_lookup_elem(&sockets, &key);
    if (!r) r = &fresh; /* not tracked, but still sent if it is an event */
  } else if (!r->cookie) {
    r->cookie = bpf_get_socket_cookie((void *)sk); /* seeded before anything asked for one */
  }
  fill_common(r, &sk->__sk_common);
  r->state = newstate;
  r->old_state = oldstate;
  if (newstate == TCP_LISTEN) add_listener(key, r);
  if (newstate == TCP_ESTABLISHED) {
    if (oldstate == TCP_SYN_SENT && r->time_ns) r->connect_us = (bpf_ktime_get_ns() - r->time_ns) / 1000;
    r->time_ns = 0; /* in an event, a time means TIME_WAIT */
    fill_figures(r, sk);
    send_event(r);
  }
}

/*
 * The kernel runs a tracing program at most once at a time on a CPU: a state change made while
 * on_state_change runs on the same CPU (by an interrupt, a packet's softirq; or, where tracepoints
 * may be preempted, by another task) is skipped, and counted in the program's recursion_misses. Two
 * more programs on the same tracepoint, each guarded apart by the kernel, handle those changes.
 * Attached after it, in this order, they run after it for each change. A program that handled a
 * change says so; the next one handles each change not said, and the last takes each said one back.
 * A change is lost only where the kernel skipped all three (counted by user space: the first's
 * misses less those made up).
 *
 * Each of the first two says its changes in slots of its own, per CPU: the kernel runs one program
 * once at a time on a CPU, so a slot has one writer at a time (slots shared by both saw a change
 * handled twice on 7.3.4: a task preempted while it wrote its slot, and another's change written
 * into the same one). A slot whose taker the kernel skipped in turn is left behind: after
 * SAID_FOR_NS it is free again and no longer taken for a change (a sock's address and states come
 * again, with a new socket at that address).
 */
#define SAID_SLOTS 8
/* 1 s: the last program runs microseconds after the first, or after an interrupt's work or a
 * preempting task's turn. */
#define SAID_FOR_NS 1000000000LL
#define SAID_BY_FIRST 0
#define SAID_BY_SECOND 1

struct said_change {
  __u64 sock; /* 0: a free slot */
  __u64 time_ns;
  __u32 oldstate;
  __u32 newstate;
};
struct handled_changes {
  struct said_change by[2][SAID_SLOTS]; /* SAID_BY_FIRST, SAID_BY_SECOND */
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct handled_changes);
} handled SEC(".maps");

/* How long ago a change was said. Signed: bpf_ktime_get_ns (the kernel's fast monotonic clock) may
 * step back a little around a timekeeping update, and a change said just now is not an old one. */
static __always_inline int said_lately(const struct said_change *c, __u64 now) {
  return (__s64)(now - c->time_ns) < SAID_FOR_NS;
}

static __always_inline int is_change(const struct said_change *c, const struct sock *sk, int oldstate, int newstate, __u64 now) {
  return c->sock == (__u64)sk && c->oldstate == (__u32)oldstate && c->newstate == (__u32)newstate && said_lately(c, now);
}

/* Says that this change is handled: in a free slot of `slots`, else in the one said longest ago. */
static __always_inline void say(struct said_change *slots, const struct sock *sk, int oldstate, int newstate, __u64 now) {
  int free = SAID_SLOTS - 1;
  __u64 oldest = ~0ULL;
#pragma unroll
  for (int i = 0; i < SAID_SLOTS; i++) {
    __u64 taken = slots[i].sock && said_lately(&slots[i], now) ? slots[i].time_ns : 0;
    if (taken < oldest) {
      oldest = taken;
      free = i;
    }
  }
  /* The sock last: a reader between (an interrupt's program) sees the slot free, not half said. */
  slots[free].sock = 0;
  slots[free].time_ns = now;
  slots[free].oldstate = oldstate;
  slots[free].newstate = newstate;
  slots[free].sock = (__u64)sk;
}

/* The slot of `slots` this change is said in, or -1. */
static __always_inline int said_in(const struct said_change *slots, const struct sock *sk, int oldstate, int newstate, __u64 now) {
#pragma unroll
  for (int i = 0; i < SAID_SLOTS; i++)
    if (is_change(&slots[i], sk, oldstate, newstate, now)) return i;
  return -1;
}

/* This CPU's slots (a per-CPU array of one entry). */
static __always_inline struct handled_changes *said_on_this_cpu(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&handled, &zero);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state_change, const struct sock *sk, const int oldstate, const int newstate) {
  handle_state_change(sk, oldstate, newstate);
  struct handled_changes *said = said_on_this_cpu();
  if (said) say(said->by[SAID_BY_FIRST], sk, oldstate, newstate, bpf_ktime_get_ns());
  return 0;
}

/* Second: handles a change on_state_change did not say, and says it for the third. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state_change_skipped, const struct sock *sk, const int oldstate, const int newstate) {
  struct handled_changes *said = said_on_this_cpu();
  if (!said) return 0;
  __u64 now = bpf_ktime_get_ns();
  if (said_in(said->by[SAID_BY_FIRST], sk, oldstate, newstate, now) >= 0) return 0; /* the third takes it back */
  count(COUNTER_MADE_UP);
  handle_state_change(sk, oldstate, newstate);
  say(said->by[SAID_BY_SECOND], sk, oldstate, newstate, now);
  return 0;
}

/* Third and last: takes a said change back, or handles one neither program before it did. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state_change_skipped_twice, const struct sock *sk, const int oldstate, const int newstate) {
  struct handled_changes *said = said_on_this_cpu();
  if (!said) return 0;
  __u64 now = bpf_ktime_get_ns();
#pragma unroll
  for (int by = 0; by < 2; by++) {
    int at = said_in(said->by[by], sk, oldstate, newstate, now);
    if (at >= 0 && at < SAID_SLOTS) {
      said->by[by][at].sock = 0;
      return 0;
    }
  }
  count(COUNTER_MADE_UP);
  handle_state_change(sk, oldstate, newstate);
  return 0;
}

/* Where a DNS packet is put together before it is sent at its own length (bpf_ringbuf_output): one a CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct dns_packet);
} dns_scratch SEC(".maps");

/*
 * A DNS answer coming in, in any namespace (the device's). Runs for every packet received: it loads
 * a few fields of the skb (the tracepoint's, trusted: plain loads) and reads the IP header with the
 * first two bytes after it (one bpf_probe_read_kernel, two where IPv4 carries options), then stops,
 * but for a packet from port 53 or from 127.0.0.11, which it copies. At this point skb->data is the
 * IP header (eth_type_trans pulled the link layer); only the linear part is read.
 */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(dns_answers, struct sk_buff *skb) {
  __u16 protocol = skb->protocol;
  unsigned char *data = skb->data;
  __u32 linear = skb->len - skb->data_len;
  __be16 source_port;
  int from_docker_dns = 0;
  if (protocol == bpf_htons(ETH_P_IP)) {
    struct {
      struct iphdr ip;
      __be16 port; /* where a header without options ends: the source port */
    } h;
    if (linear < sizeof(h) || bpf_probe_read_kernel(&h, sizeof(h), data)) return 0;
    if (h.ip.version != 4 || (h.ip.frag_off & bpf_htons(0x1fff))) return 0; /* a later fragment has no header */
    if (h.ip.protocol != IPPROTO_UDP && h.ip.protocol != IPPROTO_TCP) return 0;
    source_port = h.port;
    if (h.ip.ihl != 5) {
      __u32 transport = h.ip.ihl * 4;
      if (transport < 20 || linear < transport + 2 || bpf_probe_read_kernel(&source_port, sizeof(source_port), data + transport)) return 0;
    }
    from_docker_dns = h.ip.saddr == bpf_htonl(DOCKER_DNS);
  } else if (protocol == bpf_htons(ETH_P_IPV6)) {
    struct {
      struct ipv6hdr ip6; /* extension headers are not followed: DNS answers carry none */
      __be16 port;
    } h6;
    if (linear < sizeof(h6) || bpf_probe_read_kernel(&h6, sizeof(h6), data)) return 0;
    if (h6.ip6.nexthdr != IPPROTO_UDP && h6.ip6.nexthdr != IPPROTO_TCP) return 0;
    source_port = h6.port;
  } else {
    return 0;
  }
  if (source_port != bpf_htons(DNS_PORT) && !from_docker_dns) return 0;

  __u32 zero = 0;
  struct dns_packet *r = bpf_map_lookup_elem(&dns_scratch, &zero);
  if (!r) return 0;
  __u32 length = linear < DNS_COPY - 1 ? linear : DNS_COPY - 1;
  /* A bound the verifiers of every kernel see: the barrier keeps clang from dropping the mask. */
  asm volatile("" : "+r"(length));
  length &= DNS_COPY - 1;
  r->length = length;
  r->netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
  r->time_ns = bpf_ktime_get_ns();
  if (bpf_probe_read_kernel(r->packet, length, data)) return 0;
  /* Sent at its length (a header of 16 bytes, then the packet), not the scratch's 4 kB. */
  if (bpf_ringbuf_output(&dns, r, 16 + length, wake_when_half_full(&dns, DNS_RING_SIZE))) count(COUNTER_DNS_LOST);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
