/*
 * Connections shorter than a millisecond, made and accepted inside the test's containers (a
 * busybox shell forks an nc per connection, and its connections live longer):
 *   connstorm serve PORT                      accept and close, forever
 *   connstorm connect ADDR PORT RATE SECONDS  RATE connections a second for SECONDS, each closed
 *                                             at once once established; prints how many were
 *   connstorm again ADDR PORT LOCALPORT       one connection from LOCALPORT that asks an HTTP
 *                                             server for / and waits for it to close first: run
 *                                             again, it reuses the 4-tuple the server holds in
 *                                             TIME_WAIT; prints the bytes of the answer
 * Built static by the test (cc -static) and copied into the containers with docker cp.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4096)) {
      perror("listen");
      return 1;
    }
    for (;;) {
      int c = accept(s, NULL, NULL);
      if (c >= 0) close(c);
    }
  }
  if (argc == 6 && strcmp(argv[1], "connect") == 0) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
      fprintf(stderr, "connstorm: not an IPv4 address: %s\n", argv[2]);
      return 2;
    }
    double rate = atof(argv[4]), seconds = atof(argv[5]), start = now();
    long made = 0, established = 0;
    while (now() - start < seconds) {
      // Paced: no more than the rate allows by now.
      if ((double)made >= (now() - start) * rate) {
        usleep(200);
        continue;
      }
      made++;
      int s = socket(AF_INET, SOCK_STREAM, 0);
      if (s < 0) continue;
      if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) established++;
      close(s);
    }
    printf("%ld\n", established);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "again") == 0) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3]))};
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[4]))};
    int s = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1 || bind(s, (struct sockaddr *)&local, sizeof(local)) ||
        connect(s, (struct sockaddr *)&a, sizeof(a))) {
      perror("connstorm again");
      return 1;
    }
    static const char request[] = "GET / HTTP/1.0\r\n\r\n";
    if (write(s, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1)) return 1;
    char buffer[4096];
    long total = 0;
    ssize_t n;
    while ((n = read(s, buffer, sizeof(buffer))) > 0) total += n; /* to the server's FIN */
    close(s);
    printf("%ld\n", total);
    return 0;
  }
  fprintf(stderr, "usage: connstorm serve PORT | connstorm connect ADDR PORT RATE SECONDS | connstorm again ADDR PORT LOCALPORT\n");
  return 2;
}
