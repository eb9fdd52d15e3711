/*
 * outpost's netlink socket source: NETLINK_SOCK_DIAG dumps of TCP (IPv4 and IPv6) inside a
 * network namespace, what `ss` does, returned to JavaScript as compact binary records.
 *
 * readNamespace(nsPath, stateMask) -> Promise<Buffer>
 *
 * The work runs off the main thread (N-API async work). Entering a namespace changes the
 * calling thread for good, and libuv's pool threads also run DNS lookups, so the pool thread
 * never enters one: it starts a short-lived thread that opens the namespace file, setns()
 * into it, dumps, and exits with the namespace.
 *
 * Record (RECORD_SIZE bytes, host byte order for numbers, network order for addresses):
 *   0 u8 family (4 | 6)   1 u8 state   2 u16 local port   4 u16 remote port   6 u16 zero
 *   8 u32 inode   12 u32 zero   16 u8[16] local address   32 u8[16] remote address
 *   48 u64 cgroup id (0 when the kernel does not send it)
 *   56 u64 socket cookie (idiag_cookie: the same from SYN to TIME_WAIT, never reused)
 *   64 u64 bytes acked   72 u64 bytes received   80 u32 segments retransmitted (total_retrans)
 *   84 u32 smoothed RTT, microseconds   88 u32 zero (connect time: ebpf only)
 *   92 u8 1 when the figures are there (tcp_info: full sockets; not TIME_WAIT, request sockets)
 *   93 u8 zero (socket error: ebpf only)   94 u16 zero   96 u32 segments sent (segs_out)   100 u32 zero
 * The figures come from INET_DIAG_INFO (struct tcp_info) in the same dump: no second dump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECORD_SIZE 104
#ifndef INET_DIAG_CGROUP_ID
#define INET_DIAG_CGROUP_ID 21
#endif

typedef struct {
  /* in */
  char *ns_path;
  uint32_t state_mask;
  /* out */
  uint8_t *records;
  size_t count;
  size_t capacity;
  int error;          /* errno of the failure, 0 on success */
  const char *failed; /* which step failed */
  /* N-API */
  napi_async_work work;
  napi_deferred deferred;
} dump_job;

static int append_record(dump_job *job, const struct inet_diag_msg *msg, int len) {
  if (job->count == job->capacity) {
    size_t capacity = job->capacity ? job->capacity * 2 : 256;
    uint8_t *grown = realloc(job->records, capacity * RECORD_SIZE);
    if (!grown) return ENOMEM;
    job->records = grown;
    job->capacity = capacity;
  }
  uint8_t *r = job->records + job->count * RECORD_SIZE;
  memset(r, 0, RECORD_SIZE);
  r[0] = msg->idiag_family == AF_INET6 ? 6 : 4;
  r[1] = msg->idiag_state;
  uint16_t lport = ntohs(msg->id.idiag_sport), rport = ntohs(msg->id.idiag_dport);
  memcpy(r + 2, &lport, 2);
  memcpy(r + 4, &rport, 2);
  uint32_t inode = msg->idiag_inode;
  memcpy(r + 8, &inode, 4);
  size_t alen = msg->idiag_family == AF_INET6 ? 16 : 4;
  memcpy(r + 16, msg->id.idiag_src, alen);
  memcpy(r + 32, msg->id.idiag_dst, alen);
  /* The kernel writes the cookie as two u32 halves of its u64 value, low half first. */
  uint64_t cookie = (uint64_t)msg->id.idiag_cookie[0] | ((uint64_t)msg->id.idiag_cookie[1] << 32);
  memcpy(r + 56, &cookie, 8);

  /* Attributes follow the message; the cgroup id is one of them on kernels >= 5.7. */
  int attrs_len = len - (int)NLMSG_LENGTH(sizeof(*msg));
  struct rtattr *attr = (struct rtattr *)(msg + 1);
  for (; attrs_len >= (int)sizeof(struct rtattr) && attr->rta_len >= sizeof(struct rtattr) && attr->rta_len <= (unsigned)attrs_len;
       attrs_len -= NLMSG_ALIGN(attr->rta_len), attr = (struct rtattr *)((char *)attr + NLMSG_ALIGN(attr->rta_len))) {
    if (attr->rta_type == INET_DIAG_CGROUP_ID && attr->rta_len >= sizeof(struct rtattr) + 8) {
      memcpy(r + 48, (char *)attr + sizeof(struct rtattr), 8);
    } else if (attr->rta_type == INET_DIAG_INFO) {
      /* An older kernel sends a shorter struct: what it lacks stays 0. */
      struct tcp_info info;
      memset(&info, 0, sizeof(info));
      size_t have = attr->rta_len - sizeof(struct rtattr);
      memcpy(&info, (char *)attr + sizeof(struct rtattr), have < sizeof(info) ? have : sizeof(info));
      uint64_t acked = info.tcpi_bytes_acked, received = info.tcpi_bytes_received;
      uint32_t retrans = info.tcpi_total_retrans, rtt = info.tcpi_rtt, segs_out = info.tcpi_segs_out;
      memcpy(r + 64, &acked, 8);
      memcpy(r + 72, &received, 8);
      memcpy(r + 80, &retrans, 4);
      memcpy(r + 84, &rtt, 4);
      memcpy(r + 96, &segs_out, 4);
      r[92] = 1;
    }
  }
  job->count++;
  return 0;
}

/* One dump of one address family. Returns 0 or an errno. */
static int dump_family(int fd, dump_job *job, uint8_t family, uint8_t *buf, size_t buf_size) {
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } request;
  memset(&request, 0, sizeof(request));
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.nlh.nlmsg_seq = family;
  request.req.sdiag_family = family;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = job->state_mask;
  request.req.idiag_ext = 1 << (INET_DIAG_INFO - 1);

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) return errno;

  for (;;) {
    ssize_t n = recv(fd, buf, buf_size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EPIPE;
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != family) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *err = NLMSG_DATA(h);
        return err->error ? -err->error : EPROTO;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
      int rc = append_record(job, NLMSG_DATA(h), (int)h->nlmsg_len);
      if (rc) return rc;
    }
  }
}

/* The thread that enters the namespace; it ends with it. */
static void *dump_in_namespace(void *arg) {
  dump_job *job = arg;
  int ns = open(job->ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    job->error = errno;
    job->failed = "open";
    return NULL;
  }
  if (setns(ns, CLONE_NEWNET) < 0) {
    job->error = errno;
    job->failed = "setns";
    close(ns);
    return NULL;
  }
  close(ns);
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    job->error = errno;
    job->failed = "socket";
    return NULL;
  }
  size_t buf_size = 64 * 1024;
  uint8_t *buf = malloc(buf_size);
  if (!buf) {
    job->error = ENOMEM;
    job->failed = "malloc";
  } else {
    int rc = dump_family(fd, job, AF_INET, buf, buf_size);
    if (!rc) rc = dump_family(fd, job, AF_INET6, buf, buf_size);
    if (rc) {
      job->error = rc;
      job->failed = "dump";
    }
    free(buf);
  }
  close(fd);
  return NULL;
}

static void execute(napi_env env, void *data) {
  (void)env;
  dump_job *job = data;
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, dump_in_namespace, job);
  if (rc) {
    job->error = rc;
    job->failed = "pthread_create";
    return;
  }
  pthread_join(thread, NULL);
}

static void free_records(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  dump_job *job = data;
  napi_value result;
  if (status != napi_ok) {
    job->error = ECANCELED;
    job->failed = "async work";
  }
  if (job->error) {
    napi_value message, code;
    char text[512];
    snprintf(text, sizeof(text), "%s %s: %s", job->failed, job->ns_path, strerror(job->error));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    const char *name = job->error == EPERM ? "EPERM" : job->error == ENOENT ? "ENOENT" : job->error == EACCES ? "EACCES" : job->error == ESRCH ? "ESRCH" : "EIO";
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, message, &result);
    napi_value errno_value, step;
    napi_create_int32(env, job->error, &errno_value);
    napi_set_named_property(env, result, "errno", errno_value);
    napi_create_string_utf8(env, job->failed, NAPI_AUTO_LENGTH, &step);
    napi_set_named_property(env, result, "syscall", step);
    napi_reject_deferred(env, job->deferred, result);
    free(job->records);
  } else if (job->count == 0) {
    free(job->records);
    napi_create_buffer(env, 0, NULL, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    /* Handed over without a copy; freed when the Buffer is collected. */
    napi_create_external_buffer(env, job->count * RECORD_SIZE, job->records, free_records, NULL, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free(job->ns_path);
  free(job);
}

static napi_value read_namespace(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "readNamespace(nsPath: string, stateMask: number)");
    return NULL;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "nsPath must be a string");
    return NULL;
  }
  uint32_t mask;
  if (napi_get_value_uint32(env, argv[1], &mask) != napi_ok) {
    napi_throw_type_error(env, NULL, "stateMask must be a number");
    return NULL;
  }
  dump_job *job = calloc(1, sizeof(*job));
  if (!job || !(job->ns_path = malloc(len + 1))) {
    free(job);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], job->ns_path, len + 1, &len);
  job->state_mask = mask;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "outpost:sock_diag", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, size;
  napi_create_function(env, "readNamespace", NAPI_AUTO_LENGTH, read_namespace, NULL, &fn);
  napi_set_named_property(env, exports, "readNamespace", fn);
  napi_create_uint32(env, RECORD_SIZE, &size);
  napi_set_named_property(env, exports, "recordSize", size);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
