/*
 * outpost's reader of the DNS answers a container receives: a packet socket in the container's
 * network namespace with a classic BPF filter that lets through nothing but packets coming in
 * from port 53 (UDP or TCP) or from Docker's embedded DNS server (127.0.0.11, whose answers
 * leave its socket from another port), so no other payload is ever copied out of the kernel.
 *
 * open(nsPath) -> fd          the socket, made in the namespace of the ns/net file
 * drain(fd, maxPackets) -> { packets: Buffer, dropped: number }
 * close(fd)
 *
 * The socket is made on a short-lived thread that enters the namespace and exits with it (as in
 * sock_diag.c); a socket stays in the namespace it was made in. Reading does not block: drain()
 * takes what is queued.
 *
 * packets: records one after the other, each
 *   0 u32 captured length   4 u32 zero   8 f64 when the kernel received it (ms since the epoch)
 *   16 the packet from its IP header on, padded with zeros to a multiple of 8
 * dropped: packets the socket's queue had no room for since the last drain (PACKET_STATISTICS).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The size of the header of each packet record drain() returns (exported as recordSize). */
#define RECORD_HEADER 16

/* The largest packet kept: a DNS message over UDP is at most 65,535 bytes (EDNS). */
#define SNAPLEN 65535
#define RECEIVE_BUFFER (1 << 20)

/*
 * Incoming, and IPv4 from port 53 or from 127.0.0.11 (not a later fragment), or IPv6 from port 53
 * (without extension headers); UDP or TCP. The jumps count the instructions they skip.
 */
static struct sock_filter FILTER[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 19, 0),
    /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 10),
    /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
    /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 1, 0),
    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 14),
    /* 7 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),
    /* 8 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 12, 0),
    /* 9 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
    /* 10 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),
    /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 53, 8, 0),
    /* 12 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),
    /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x7f00000b, 6, 7),
    /* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 6),
    /* 15 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
    /* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 1, 0),
    /* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 3),
    /* 18 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 40),
    /* 19 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 53, 0, 1),
    /* 20 */ BPF_STMT(BPF_RET | BPF_K, SNAPLEN),
    /* 21 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

typedef struct {
  const char *ns_path;
  int fd;
  int error;
  const char *failed;
} open_job;

static int fail(open_job *job, const char *step) {
  job->error = errno;
  job->failed = step;
  return -1;
}

static int make_socket(open_job *job) {
  /* Protocol 0: no packet is queued before the filter is on; bind() starts the capture. */
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(job, "socket");
  struct sock_fprog program = {.len = sizeof(FILTER) / sizeof(FILTER[0]), .filter = FILTER};
  int on = 1, size = RECEIVE_BUFFER;
  struct sockaddr_ll all = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = 0};
  const char *step = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) < 0) step = "SO_ATTACH_FILTER";
  else if (setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on)) < 0) step = "SO_LOCK_FILTER";
  else if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof(on)) < 0) step = "SO_TIMESTAMP";
  else if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0) step = "SO_RCVBUF";
  else if (bind(fd, (struct sockaddr *)&all, sizeof(all)) < 0) step = "bind";
  if (step) {
    fail(job, step);
    close(fd);
    return -1;
  }
  return fd;
}

static void *open_in_namespace(void *arg) {
  open_job *job = arg;
  int ns = open(job->ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    fail(job, "open");
    return NULL;
  }
  if (setns(ns, CLONE_NEWNET) < 0) {
    fail(job, "setns");
    close(ns);
    return NULL;
  }
  close(ns);
  job->fd = make_socket(job);
  return NULL;
}

static napi_value throw_errno(napi_env env, int error, const char *step, const char *path) {
  char text[512];
  snprintf(text, sizeof(text), "%s %s: %s", step, path, strerror(error));
  const char *code = error == EPERM ? "EPERM" : error == ENOENT ? "ENOENT" : error == EACCES ? "EACCES" : error == ESRCH ? "ESRCH" : "EIO";
  napi_value message, code_value, result, errno_value, step_value;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, message, &result);
  napi_create_int32(env, error, &errno_value);
  napi_set_named_property(env, result, "errno", errno_value);
  napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &step_value);
  napi_set_named_property(env, result, "syscall", step_value);
  napi_throw(env, result);
  return NULL;
}

static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096];
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(nsPath: string)");
    return NULL;
  }
  open_job job = {.ns_path = path, .fd = -1};
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, open_in_namespace, &job);
  if (rc) return throw_errno(env, rc, "pthread_create", path);
  pthread_join(thread, NULL);
  if (job.fd < 0) return throw_errno(env, job.error, job.failed, path);
  napi_value fd;
  napi_create_int32(env, job.fd, &fd);
  return fd;
}

static napi_value drain(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  uint32_t max_packets;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &max_packets) != napi_ok) {
    napi_throw_type_error(env, NULL, "drain(fd: number, maxPackets: number)");
    return NULL;
  }
  size_t capacity = 0, used = 0;
  uint8_t *records = NULL;
  static uint8_t packet[SNAPLEN];
  char control[CMSG_SPACE(sizeof(struct timeval))];
  for (uint32_t n = 0; n < max_packets; n++) {
    struct iovec iov = {.iov_base = packet, .iov_len = sizeof(packet)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
    ssize_t got = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      free(records);
      return throw_errno(env, errno, "recvmsg", "(packet socket)");
    }
    double when = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
        struct timeval tv;
        memcpy(&tv, CMSG_DATA(c), sizeof(tv));
        when = (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
      }
    }
    size_t padded = ((size_t)got + 7) & ~(size_t)7;
    if (used + RECORD_HEADER + padded > capacity) {
      size_t wanted = capacity ? capacity * 2 : 16384;
      while (wanted < used + RECORD_HEADER + padded) wanted *= 2;
      uint8_t *grown = realloc(records, wanted);
      if (!grown) {
        free(records);
        napi_throw_error(env, "ENOMEM", "out of memory");
        return NULL;
      }
      records = grown;
      capacity = wanted;
    }
    uint32_t length = (uint32_t)got, zero = 0;
    memcpy(records + used, &length, 4);
    memcpy(records + used + 4, &zero, 4);
    memcpy(records + used + 8, &when, 8);
    memcpy(records + used + RECORD_HEADER, packet, (size_t)got);
    memset(records + used + RECORD_HEADER + got, 0, padded - (size_t)got);
    used += RECORD_HEADER + padded;
  }
  struct tpacket_stats stats = {0};
  socklen_t stats_size = sizeof(stats);
  getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &stats_size);
  napi_value result, buffer, dropped;
  void *data;
  napi_create_buffer_copy(env, used, records ? records : (void *)"", &data, &buffer);
  free(records);
  napi_create_uint32(env, stats.tp_drops, &dropped);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "packets", buffer);
  napi_set_named_property(env, result, "dropped", dropped);
  return result;
}

static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "close(fd: number)");
    return NULL;
  }
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_socket, NULL, &fn);
  napi_set_named_property(env, exports, "open", fn);
  napi_create_function(env, "drain", NAPI_AUTO_LENGTH, drain, NULL, &fn);
  napi_set_named_property(env, exports, "drain", fn);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, close_socket, NULL, &fn);
  napi_set_named_property(env, exports, "close", fn);
  napi_value header;
  napi_create_uint32(env, RECORD_HEADER, &header);
  napi_set_named_property(env, exports, "recordSize", header);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
