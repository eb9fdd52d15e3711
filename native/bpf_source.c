/*
 * outpost's eBPF socket source: loads native/bpf/outpost.bpf.o with libbpf and gives JavaScript
 * its two outputs as buffers of 128-byte records (layout in outpost.bpf.c, struct socket_record):
 *
 *   load(objectPath) -> handle         opens, loads, attaches the state changes, then seeds every
 *                                      held TCP socket's entry (one walk of every open file); an
 *                                      optional program the kernel refuses is left out (programs()
 *                                      says which and why); throws an Error with code, step
 *                                      (syscall), program and libbpf's log when a required one fails
 *   sockets(handle) -> Buffer          one read: every TCP socket known, as it is now (the open
 *                                      files walked again first when the kernel skipped the
 *                                      state-change program since the last walk)
 *   programs(handle) -> [{name, loaded, reason, code, log}]   each program: runs, or why not
 *   drainEvents(handle) -> Buffer      events since the last call: connections established,
 *                                      connects failed, connections closed (into TIME_WAIT or not)
 *   drainDns(handle) -> Buffer         DNS packets received since the last call (program dns_answers),
 *                                      as native/dns_answers.c's drain() gives them, but for the
 *                                      namespace's inode in its zero: u32 length, u32 netns, f64 ms
 *                                      since the epoch, the packet from its IP header, padded to 8
 *   counters(handle) -> {trackedFull, eventsLost, eventsDropped, dnsLost, dnsDropped, stateChangesSkipped,
 *                        stateChangesMadeUp}       skipped: no program handled them; made up: the
 *                                                  programs after on_state_change handled them
 *   monotonicNs() -> number            CLOCK_MONOTONIC now: the clock of the TIME_WAIT events
 *   close(handle)
 *
 * A thread of its own consumes the ring buffer and appends events to a bounded queue, so that events
 * are drained from the kernel as they happen, not once a scrape: the ring buffer never fills while
 * JavaScript is busy. drainEvents consumes too (one consumer at a time), so it returns every event
 * committed before it was called. Past MAX_QUEUED events between two drains, events are dropped and counted.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD_SIZE 128
#define LOG_TAIL 6144 /* the last of what libbpf warned of a load that is kept */
#define MAX_QUEUED (256 * 1024)
#define DNS_HEADER 16
#define DNS_QUEUE_LIMIT (16 * 1024 * 1024) /* bytes of DNS packets kept between two drains */
#define COUNTER_MADE_UP 3 /* outpost.bpf.c's counters[3]: skipped state changes handled all the same */

typedef struct {
  uint8_t *data;
  size_t count;
  size_t capacity;
} records;

/* A program that may be left out where the kernel refuses it, and why it was. */
#define OPTIONAL_PROGRAMS 2
#define DNS_PROGRAM 1
static const char *optional_programs[OPTIONAL_PROGRAMS] = {"seed_sockets", "dns_answers"};

/* DNS packets as drainDns() hands them out, one after the other. */
typedef struct {
  uint8_t *data;
  size_t length;
  size_t capacity;
} bytes;

typedef struct {
  struct bpf_object *object;
  struct bpf_link *state_changes;
  struct bpf_link *state_changes_skipped[2]; /* the programs that handle what it was skipped for, in order */
  struct bpf_link *iterator;
  struct bpf_link *dns_answers; /* NULL when the program is left out */
  struct ring_buffer *ring;
  int counters_fd;
  int state_changes_fd; /* on_state_change's program: how often the kernel skipped it */
  struct bpf_program *seed_sockets; /* NULL when it is left out */
  uint64_t skipped_seen; /* skipped runs already made up for by a seeding walk */
  const uint8_t *listing; /* the listing map, mapped read-only */
  size_t listing_size;
  uint32_t listing_capacity;
  char left_out[OPTIONAL_PROGRAMS][512]; /* why an optional program is not running; "" when it runs */
  char left_out_log[OPTIONAL_PROGRAMS][LOG_TAIL]; /* and what libbpf said of it */
  int left_out_errno[OPTIONAL_PROGRAMS];
  pthread_t poller;
  int polling;
  volatile int stop;
  pthread_mutex_t consuming; /* one consumer of the ring buffer at a time */
  pthread_mutex_t lock;
  records queue; /* guarded by lock */
  uint64_t dropped; /* guarded by lock */
  bytes dns_queue; /* guarded by lock */
  uint64_t dns_dropped; /* guarded by lock */
} source;

/*
 * What libbpf said while loading: its first warning (the cause; its last one only says the load
 * failed), and the tail of all it warned, where a refused program's name and the verifier's own
 * last lines are (the verifier's log can be long: its end is what explains).
 */
static __thread char first_message[256];
static __thread char log_tail[LOG_TAIL];
static __thread size_t log_length;

static void forget_messages(void) {
  first_message[0] = 0;
  log_tail[0] = 0;
  log_length = 0;
}

static int keep_messages(enum libbpf_print_level level, const char *format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char text[4096]; /* shorter than LOG_TAIL: one message always fits */
  vsnprintf(text, sizeof(text), format, args);
  size_t n = strlen(text);
  if (log_length + n >= LOG_TAIL) {
    size_t drop = log_length + n - (LOG_TAIL - 1);
    memmove(log_tail, log_tail + drop, log_length - drop);
    log_length -= drop;
  }
  memcpy(log_tail + log_length, text, n);
  log_length += n;
  log_tail[log_length] = 0;
  if (level != LIBBPF_WARN || first_message[0]) return 0;
  text[strcspn(text, "\n")] = 0;
  /* Said before any load when bpf() is refused; the refusal itself is the cause. */
  if (strstr(text, "RLIMIT_MEMLOCK")) return 0;
  const char *prefix = "libbpf: ";
  snprintf(first_message, sizeof(first_message), "%.255s", strncmp(text, prefix, strlen(prefix)) ? text : text + strlen(prefix));
  return 0;
}

/* Whether libbpf named this program in what it warned of the load. */
static int named_in_log(const char *program) {
  char needle[128];
  snprintf(needle, sizeof(needle), "prog '%s': ", program);
  return strstr(log_tail, needle) != NULL;
}

static int append(records *r, const void *record, size_t limit) {
  if (r->count == r->capacity) {
    if (limit && r->capacity >= limit) return -1;
    size_t capacity = r->capacity ? r->capacity * 2 : 64;
    uint8_t *grown = realloc(r->data, capacity * RECORD_SIZE);
    if (!grown) return -1;
    r->data = grown;
    r->capacity = capacity;
  }
  memcpy(r->data + r->count * RECORD_SIZE, record, RECORD_SIZE);
  r->count++;
  return 0;
}

static int on_event(void *ctx, void *data, size_t size) {
  source *s = ctx;
  if (size < RECORD_SIZE) return 0;
  pthread_mutex_lock(&s->lock);
  if (append(&s->queue, data, MAX_QUEUED)) s->dropped++;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

static double clock_ms(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* A DNS packet from the kernel (struct dns_packet): its header as dns_answers.c writes it, the
 * monotonic time made a wall-clock one, and only the bytes copied (padded to 8). */
static int on_dns(void *ctx, void *data, size_t size) {
  source *s = ctx;
  if (size < DNS_HEADER) return 0;
  uint32_t length, netns;
  uint64_t time_ns;
  memcpy(&length, data, 4);
  memcpy(&netns, (uint8_t *)data + 4, 4);
  memcpy(&time_ns, (uint8_t *)data + 8, 8);
  if (length > size - DNS_HEADER) return 0;
  double received_ms = clock_ms(CLOCK_REALTIME) - (clock_ms(CLOCK_MONOTONIC) - (double)time_ns / 1e6);
  size_t padded = (length + 7) / 8 * 8, need = DNS_HEADER + padded;
  pthread_mutex_lock(&s->lock);
  bytes *q = &s->dns_queue;
  if (q->length + need > DNS_QUEUE_LIMIT) {
    s->dns_dropped++;
  } else {
    if (q->length + need > q->capacity) {
      size_t capacity = q->capacity ? q->capacity * 2 : 64 * 1024;
      while (capacity < q->length + need) capacity *= 2;
      uint8_t *grown = realloc(q->data, capacity);
      if (!grown) {
        s->dns_dropped++;
        pthread_mutex_unlock(&s->lock);
        return 0;
      }
      q->data = grown;
      q->capacity = capacity;
    }
    uint8_t *at = q->data + q->length;
    memcpy(at, &length, 4);
    memcpy(at + 4, &netns, 4);
    memcpy(at + 8, &received_ms, 8);
    memcpy(at + DNS_HEADER, (uint8_t *)data + DNS_HEADER, length);
    memset(at + DNS_HEADER + length, 0, padded - length);
    q->length += need;
  }
  pthread_mutex_unlock(&s->lock);
  return 0;
}

static int consume(source *s) {
  pthread_mutex_lock(&s->consuming);
  int rc = ring_buffer__consume(s->ring);
  pthread_mutex_unlock(&s->consuming);
  return rc;
}

/*
 * Waits for the kernel's wake-up on the ring buffers' epoll fd, then consumes; every 100 ms too,
 * for a ring whose program wakes its reader only once it is half full (dns).
 */
static void *poll_events(void *arg) {
  source *s = arg;
  int epoll_fd = ring_buffer__epoll_fd(s->ring);
  while (!s->stop) {
    struct epoll_event ready;
    int rc = epoll_wait(epoll_fd, &ready, 1, 100);
    if (rc < 0 && errno != EINTR) break;
    if (rc >= 0 && consume(s) < 0) break;
  }
  return NULL;
}

/*
 * Hands the records to JavaScript as a Buffer of V8's own, and frees ours at once: a buffer
 * V8 does not know the size of is collected late, and a collection's worth each scrape piled up
 * (measured: +23 MB RSS at 200 containers after 100 scrapes).
 */
static napi_value buffer_of(napi_env env, uint8_t *data, size_t size) {
  napi_value result;
  if (napi_create_buffer_copy(env, size, data ? (void *)data : (void *)"", NULL, &result) != napi_ok) {
    napi_throw_error(env, NULL, "out of memory");
    result = NULL;
  }
  free(data);
  return result;
}

static napi_value to_buffer(napi_env env, records *r) {
  napi_value result = buffer_of(env, r->data, r->count * RECORD_SIZE);
  r->data = NULL;
  r->count = r->capacity = 0;
  return result;
}

static void set_string(napi_env env, napi_value object, const char *name, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, object, name, v);
}

static const char *errno_name(int error) {
  switch (error) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case ESRCH: return "ESRCH";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAGAIN: return "EAGAIN";
    case 0: return "";
    default: return "EIO";
  }
}

/* An Error with code, errno, syscall (the step), and where known the program and libbpf's log. */
static void throw_failure(napi_env env, const char *step, int error, const char *detail, const char *program) {
  napi_value message, code, result, errno_value;
  char text[640];
  snprintf(text, sizeof(text), "%s: %s%s%s", step, strerror(error), detail && *detail ? " (libbpf: " : "", detail && *detail ? detail : "");
  if (detail && *detail) strncat(text, ")", sizeof(text) - strlen(text) - 1);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, errno_name(error), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &result);
  napi_create_int32(env, error, &errno_value);
  napi_set_named_property(env, result, "errno", errno_value);
  set_string(env, result, "syscall", step);
  if (program) set_string(env, result, "program", program);
  if (detail) set_string(env, result, "log", log_tail);
  napi_throw(env, result);
}

static void destroy(source *s) {
  if (s->polling) {
    s->stop = 1;
    pthread_join(s->poller, NULL);
    s->polling = 0;
  }
  ring_buffer__free(s->ring);
  s->ring = NULL;
  if (s->listing) munmap((void *)s->listing, s->listing_size);
  s->listing = NULL;
  bpf_link__destroy(s->iterator);
  s->iterator = NULL;
  bpf_link__destroy(s->dns_answers);
  s->dns_answers = NULL;
  for (int i = 1; i >= 0; i--) {
    bpf_link__destroy(s->state_changes_skipped[i]);
    s->state_changes_skipped[i] = NULL;
  }
  bpf_link__destroy(s->state_changes);
  s->state_changes = NULL;
  bpf_object__close(s->object);
  s->object = NULL;
  free(s->queue.data);
  s->queue.data = NULL;
  s->queue.count = s->queue.capacity = 0;
  free(s->dns_queue.data);
  s->dns_queue.data = NULL;
  s->dns_queue.length = s->dns_queue.capacity = 0;
}

static void finalize_source(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  source *s = data;
  destroy(s);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->consuming);
  free(s);
}

/* The handle every function but load() takes as its one argument; NULL when it is not one, thrown. */
static source *get_source(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value handle;
  napi_get_cb_info(env, info, &argc, &handle, NULL, NULL);
  source *s = NULL;
  if (argc < 1 || napi_get_value_external(env, handle, (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "the first argument must be a handle from load()");
    return NULL;
  }
  if (!s->object) {
    napi_throw_error(env, "ECLOSED", "the eBPF source is closed");
    return NULL;
  }
  return s;
}

/* Runs an iterator to its end; what it wrote, up to `size` bytes, goes to `into`: 0 or an errno. */
static int run_iterator(struct bpf_link *link, void *into, size_t size, size_t *written) {
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) return errno;
  uint8_t chunk[4096];
  size_t bytes = 0;
  int error = 0;
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : 0;
      break;
    }
    if (into && bytes < size) memcpy((uint8_t *)into + bytes, chunk, (size_t)n < size - bytes ? (size_t)n : size - bytes);
    bytes += (size_t)n;
  }
  close(fd);
  if (written) *written = bytes;
  return error;
}

/*
 * The state changes no program handled. A tracing program does not run where it is already running
 * on that CPU (its run interrupted there), and says so in recursion_misses: seen on Debian's 7.3 in
 * a one-CPU VM (an accepted socket with no entry), and at 1,000 connections a second on 6.18. The
 * skipped changes the two programs after it handled (counters[3]) are not lost; those the kernel
 * skipped all three for are.
 */
static uint64_t made_up_changes(const source *s) {
  uint32_t which = COUNTER_MADE_UP;
  uint64_t made_up = 0;
  bpf_map_lookup_elem(s->counters_fd, &which, &made_up);
  return made_up;
}

static uint64_t skipped_runs(const source *s) {
  struct bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(s->state_changes_fd, &info, &length)) return 0;
  uint64_t made_up = made_up_changes(s);
  return info.recursion_misses > made_up ? info.recursion_misses - made_up : 0;
}

/* Gives every TCP socket a file holds now its entry, with its holder: one walk of every open file. */
static int seed(struct bpf_program *program) {
  struct bpf_link *link = bpf_program__attach_iter(program, NULL);
  if (!link) return errno;
  int error = run_iterator(link, NULL, 0, NULL);
  bpf_link__destroy(link);
  return error;
}

static __thread char failed_program[128];

static int optional_index(const char *name) {
  for (int i = 0; i < OPTIONAL_PROGRAMS; i++)
    if (!strcmp(optional_programs[i], name)) return i;
  return -1;
}

/*
 * Opens and loads the object, leaving out each optional program the kernel refuses (each retry
 * opens the object anew: libbpf loads an object once). 0, or an errno with *step and *program.
 */
static int open_and_load(source *s, const char *path, const char **step, const char **program) {
  int skipped[OPTIONAL_PROGRAMS] = {0};
  int interrupted = 0;
  for (;;) {
    forget_messages();
    s->object = bpf_object__open_file(path, NULL);
    if (!s->object) {
      *step = "open";
      return errno;
    }
    for (int i = 0; i < OPTIONAL_PROGRAMS; i++) {
      struct bpf_program *p = bpf_object__find_program_by_name(s->object, optional_programs[i]);
      if (p && skipped[i]) bpf_program__set_autoload(p, false);
    }
    int error = -bpf_object__load(s->object);
    if (!error) return 0;
    *step = "load";
    /* The verifier gives up with EAGAIN when a signal arrives while it works (a profiler's
     * SIGPROF, say): no refusal, so the same object is tried again, a few times. */
    if (error == EAGAIN && ++interrupted < 5) {
      bpf_object__close(s->object);
      s->object = NULL;
      continue;
    }
    /* The program libbpf named: left out if it may be, else the cause. */
    int retry = 0;
    struct bpf_program *p;
    bpf_object__for_each_program(p, s->object) {
      const char *name = bpf_program__name(p);
      if (!named_in_log(name)) continue;
      int i = optional_index(name);
      if (i >= 0 && !skipped[i]) {
        skipped[i] = retry = 1;
        snprintf(s->left_out[i], sizeof(s->left_out[i]), "load: %s (libbpf: %s)", strerror(error), first_message);
        memcpy(s->left_out_log[i], log_tail, sizeof(log_tail));
        s->left_out_errno[i] = error;
      } else if (i < 0) {
        snprintf(failed_program, sizeof(failed_program), "%s", name);
        *program = failed_program;
        retry = 0;
        break;
      }
    }
    if (!retry) return error;
    bpf_object__close(s->object);
    s->object = NULL;
  }
}

static napi_value load(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096];
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "load(objectPath: string)");
    return NULL;
  }
  libbpf_set_print(keep_messages);
  source *s = calloc(1, sizeof(*s));
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->consuming, NULL);
  const char *step = NULL, *program = NULL;
  int error = open_and_load(s, path, &step, &program);
  if (error) goto failed;
  struct bpf_program *on_state_change = bpf_object__find_program_by_name(s->object, "on_state_change");
  static const char *skipped_names[2] = {"on_state_change_skipped", "on_state_change_skipped_twice"};
  struct bpf_program *on_state_change_skipped[2];
  for (int i = 0; i < 2; i++) on_state_change_skipped[i] = bpf_object__find_program_by_name(s->object, skipped_names[i]);
  struct bpf_program *seed_sockets = bpf_object__find_program_by_name(s->object, "seed_sockets");
  struct bpf_program *list_sockets = bpf_object__find_program_by_name(s->object, "list_sockets");
  struct bpf_map *listing = bpf_object__find_map_by_name(s->object, "listing");
  struct bpf_map *events = bpf_object__find_map_by_name(s->object, "events");
  struct bpf_map *counters = bpf_object__find_map_by_name(s->object, "counters");
  struct bpf_program *dns_answers = bpf_object__find_program_by_name(s->object, "dns_answers");
  struct bpf_map *dns = bpf_object__find_map_by_name(s->object, "dns");
  if (!on_state_change || !on_state_change_skipped[0] || !on_state_change_skipped[1] || !seed_sockets || !list_sockets || !listing || !events || !counters || !dns_answers || !dns) {
    error = ENOENT;
    step = "find programs and maps";
    goto failed;
  }
  /* State changes first, so that no socket falls between the seed and them. */
  program = "on_state_change";
  if (!(s->state_changes = bpf_program__attach(on_state_change))) {
    error = errno;
    step = "attach";
    goto failed;
  }
  /* After it, in order: a tracepoint runs its programs in the order they were attached (they rely on it). */
  for (int i = 0; i < 2; i++) {
    program = skipped_names[i];
    if (!(s->state_changes_skipped[i] = bpf_program__attach(on_state_change_skipped[i]))) {
      error = errno;
      step = "attach";
      goto failed;
    }
  }
  program = "list_sockets";
  if (!(s->iterator = bpf_program__attach_iter(list_sockets, NULL))) {
    error = errno;
    step = "attach";
    goto failed;
  }
  program = NULL;
  s->state_changes_fd = bpf_program__fd(on_state_change);
  s->counters_fd = bpf_map__fd(counters);
  s->skipped_seen = skipped_runs(s);
  if (bpf_program__autoload(seed_sockets)) {
    if ((error = seed(seed_sockets))) {
      /* Left out: the sockets of before are listed once they change state. */
      snprintf(s->left_out[0], sizeof(s->left_out[0]), "seed: %s", strerror(error));
      s->left_out_errno[0] = error;
      error = 0;
    } else {
      s->seed_sockets = seed_sockets;
    }
  }
  s->listing_capacity = bpf_map__max_entries(listing);
  s->listing_size = (size_t)s->listing_capacity * RECORD_SIZE;
  long page = sysconf(_SC_PAGESIZE);
  s->listing_size = (s->listing_size + page - 1) / page * page;
  void *mapped = mmap(NULL, s->listing_size, PROT_READ, MAP_SHARED, bpf_map__fd(listing), 0);
  if (mapped == MAP_FAILED) {
    error = errno;
    step = "mmap";
    goto failed;
  }
  s->listing = mapped;
  s->ring = ring_buffer__new(bpf_map__fd(events), on_event, s, NULL);
  if (!s->ring) {
    error = errno;
    step = "ring buffer";
    goto failed;
  }
  /* Left out where it does not attach: the names are then read by packet sockets, if at all. */
  if (bpf_program__autoload(dns_answers)) {
    if (!(s->dns_answers = bpf_program__attach(dns_answers))) {
      snprintf(s->left_out[DNS_PROGRAM], sizeof(s->left_out[DNS_PROGRAM]), "attach: %s", strerror(errno));
      s->left_out_errno[DNS_PROGRAM] = errno;
    } else if (ring_buffer__add(s->ring, bpf_map__fd(dns), on_dns, s)) {
      int add_error = errno;
      bpf_link__destroy(s->dns_answers);
      s->dns_answers = NULL;
      snprintf(s->left_out[DNS_PROGRAM], sizeof(s->left_out[DNS_PROGRAM]), "ring buffer: %s", strerror(add_error));
      s->left_out_errno[DNS_PROGRAM] = add_error;
    }
  }
  if ((error = pthread_create(&s->poller, NULL, poll_events, s))) {
    step = "pthread_create";
    goto failed;
  }
  s->polling = 1;
  napi_value handle;
  napi_create_external(env, s, finalize_source, NULL, &handle);
  return handle;

failed:
  destroy(s);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->consuming);
  free(s);
  throw_failure(env, step, error ? error : EIO, first_message, program);
  return NULL;
}

/* One read: the listing program writes every live socket's record into the mapped listing. */
static napi_value sockets(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  uint32_t count = 0;
  size_t written = 0;
  /* A skipped run may have left a socket without its entry (an accepted one, say): the files
   * are walked again, which gives every socket a file or an accept queue holds its entry. */
  uint64_t skipped = skipped_runs(s);
  if (skipped > s->skipped_seen && s->seed_sockets && !seed(s->seed_sockets)) s->skipped_seen = skipped;
  int error = run_iterator(s->iterator, &count, sizeof(count), &written);
  if (!error && written != sizeof(count)) error = EIO;
  if (error) {
    throw_failure(env, "read known sockets", error, NULL, "list_sockets");
    return NULL;
  }
  if (count > s->listing_capacity) count = s->listing_capacity;
  napi_value result;
  if (napi_create_buffer_copy(env, (size_t)count * RECORD_SIZE, s->listing, NULL, &result) != napi_ok) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  return result;
}

/* Each program of the object: whether it runs, and if not why (an optional one the kernel refused). */
static napi_value programs(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  napi_value result;
  napi_create_array(env, &result);
  uint32_t n = 0;
  struct bpf_program *p;
  bpf_object__for_each_program(p, s->object) {
    napi_value entry, loaded;
    napi_create_object(env, &entry);
    const char *name = bpf_program__name(p);
    set_string(env, entry, "name", name);
    int i = optional_index(name);
    const char *reason = i >= 0 ? s->left_out[i] : "";
    napi_get_boolean(env, reason[0] == 0, &loaded);
    napi_set_named_property(env, entry, "loaded", loaded);
    set_string(env, entry, "reason", reason);
    set_string(env, entry, "log", i >= 0 ? s->left_out_log[i] : "");
    set_string(env, entry, "code", i >= 0 ? errno_name(s->left_out_errno[i]) : "");
    napi_set_element(env, result, n++, entry);
  }
  return result;
}

static napi_value drain_events(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  /* Events the kernel committed before this call, even those the thread has not woken for yet. */
  consume(s);
  pthread_mutex_lock(&s->lock);
  records out = s->queue;
  s->queue.data = NULL;
  s->queue.count = s->queue.capacity = 0;
  pthread_mutex_unlock(&s->lock);
  return to_buffer(env, &out);
}

static napi_value drain_dns(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  consume(s);
  pthread_mutex_lock(&s->lock);
  bytes out = s->dns_queue;
  s->dns_queue.data = NULL;
  s->dns_queue.length = s->dns_queue.capacity = 0;
  pthread_mutex_unlock(&s->lock);
  return buffer_of(env, out.data, out.length);
}

static napi_value counters(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  uint64_t values[3] = {0, 0, 0};
  for (uint32_t i = 0; i < 3; i++) bpf_map_lookup_elem(s->counters_fd, &i, &values[i]);
  pthread_mutex_lock(&s->lock);
  uint64_t dropped = s->dropped, dns_dropped = s->dns_dropped;
  pthread_mutex_unlock(&s->lock);
  napi_value result, n;
  napi_create_object(env, &result);
  napi_create_double(env, (double)values[0], &n);
  napi_set_named_property(env, result, "trackedFull", n);
  napi_create_double(env, (double)values[1], &n);
  napi_set_named_property(env, result, "eventsLost", n);
  napi_create_double(env, (double)dropped, &n);
  napi_set_named_property(env, result, "eventsDropped", n);
  napi_create_double(env, (double)values[2], &n);
  napi_set_named_property(env, result, "dnsLost", n);
  napi_create_double(env, (double)dns_dropped, &n);
  napi_set_named_property(env, result, "dnsDropped", n);
  napi_create_double(env, (double)skipped_runs(s), &n);
  napi_set_named_property(env, result, "stateChangesSkipped", n);
  napi_create_double(env, (double)made_up_changes(s), &n);
  napi_set_named_property(env, result, "stateChangesMadeUp", n);
  return result;
}

static napi_value monotonic_ns(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  napi_value result;
  napi_create_int64(env, (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec, &result);
  return result;
}

static napi_value close_source(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (s) destroy(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } functions[] = {
      {"load", load}, {"sockets", sockets}, {"drainEvents", drain_events},
      {"counters", counters}, {"monotonicNs", monotonic_ns}, {"close", close_source},
      {"programs", programs}, {"drainDns", drain_dns},
  };
  for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  napi_value size;
  napi_create_uint32(env, RECORD_SIZE, &size);
  napi_set_named_property(env, exports, "recordSize", size);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
