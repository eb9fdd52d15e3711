/*
 * The floor: the least work that reads every container's TCP sockets from the kernel. For each
 * pid, enter its network namespace and do NETLINK_SOCK_DIAG dumps of TCP over IPv4 and IPv6
 * (all states), counting the records; one namespace after another, nothing else.
 *
 *   floor ROUNDS PID...   prints one line per round: <seconds> <sockets>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[64 * 1024];

static long dump(int fd, int family) {
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } r = {0};
  r.nlh.nlmsg_len = sizeof(r);
  r.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  r.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r.req.sdiag_family = family;
  r.req.sdiag_protocol = IPPROTO_TCP;
  r.req.idiag_states = 0x1ffe;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &r, sizeof(r), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) return -1;
  long count = 0;
  for (;;) {
    int n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return -1;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return count;
      if (h->nlmsg_type == NLMSG_ERROR) return -1;
      count++;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor ROUNDS PID...\n");
    return 2;
  }
  int rounds = atoi(argv[1]);
  int self = open("/proc/self/ns/net", O_RDONLY);
  for (int round = 0; round < rounds; round++) {
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long sockets = 0;
    for (int i = 2; i < argc; i++) {
      char path[64];
      snprintf(path, sizeof(path), "/proc/%s/ns/net", argv[i]);
      int ns = open(path, O_RDONLY);
      if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
        perror(path);
        return 1;
      }
      close(ns);
      int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
      long v4 = dump(fd, AF_INET), v6 = dump(fd, AF_INET6);
      close(fd);
      if (v4 < 0 || v6 < 0) {
        fprintf(stderr, "dump failed in %s\n", path);
        return 1;
      }
      sockets += v4 + v6;
    }
    setns(self, CLONE_NEWNET);
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f %ld\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9, sockets);
  }
  return 0;
}
