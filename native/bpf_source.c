/*
 * outpost's eBPF socket source: loads native/bpf/outpost.bpf.o with libbpf and gives JavaScript
 * its two outputs as buffers of 72-byte records (layout in outpost.bpf.c, struct socket_record):
 *
 *   load(objectPath) -> handle         opens, loads, attaches the state changes, then seeds every
 *                                      held TCP socket's record (one walk of every open file);
 *                                      throws an Error with code and step
 *   sockets(handle) -> Buffer          one read of the known sockets' iterator: every TCP socket
 *                                      known, as it is now
 *   drainEvents(handle) -> Buffer      events since the last call: connections established,
 *                                      connects failed, sockets that entered TIME_WAIT
 *   counters(handle) -> {trackedFull, eventsLost, eventsDropped}
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD_SIZE 72
#define MAX_QUEUED (256 * 1024)

typedef struct {
  uint8_t *data;
  size_t count;
  size_t capacity;
} records;

typedef struct {
  struct bpf_object *object;
  struct bpf_link *state_changes;
  struct bpf_link *iterator;
  struct ring_buffer *ring;
  int counters_fd;
  pthread_t poller;
  int polling;
  volatile int stop;
  pthread_mutex_t consuming; /* one consumer of the ring buffer at a time */
  pthread_mutex_t lock;
  records queue; /* guarded by lock */
  uint64_t dropped; /* guarded by lock */
} source;

/* libbpf's first warning of a load: the cause (its last one only says the load failed). */
static __thread char first_message[256];

static int keep_first_message(enum libbpf_print_level level, const char *format, va_list args) {
  if (level == LIBBPF_DEBUG || first_message[0]) return 0;
  char text[sizeof(first_message)];
  vsnprintf(text, sizeof(text), format, args);
  text[strcspn(text, "\n")] = 0;
  /* Said before any load when bpf() is refused; the refusal itself is the cause. */
  if (strstr(text, "RLIMIT_MEMLOCK")) return 0;
  const char *prefix = "libbpf: ";
  snprintf(first_message, sizeof(first_message), "%s", strncmp(text, prefix, strlen(prefix)) ? text : text + strlen(prefix));
  return 0;
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

static int consume(source *s) {
  pthread_mutex_lock(&s->consuming);
  int rc = ring_buffer__consume(s->ring);
  pthread_mutex_unlock(&s->consuming);
  return rc;
}

/* Waits for the kernel's wake-up on the ring buffer's epoll fd, then consumes. */
static void *poll_events(void *arg) {
  source *s = arg;
  int epoll_fd = ring_buffer__epoll_fd(s->ring);
  while (!s->stop) {
    struct epoll_event ready;
    int rc = epoll_wait(epoll_fd, &ready, 1, 200);
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0 && consume(s) < 0) break;
  }
  return NULL;
}

/*
 * Hands the records to JavaScript as a Buffer of V8's own, and frees ours at once: a buffer
 * V8 does not know the size of is collected late, and a collection's worth each scrape piled up
 * (measured: +23 MB RSS at 200 containers after 100 scrapes).
 */
static napi_value to_buffer(napi_env env, records *r) {
  napi_value result;
  if (napi_create_buffer_copy(env, r->count * RECORD_SIZE, r->data, NULL, &result) != napi_ok) {
    napi_throw_error(env, NULL, "out of memory");
    result = NULL;
  }
  free(r->data);
  r->data = NULL;
  r->count = r->capacity = 0;
  return result;
}

static void throw_failure(napi_env env, const char *step, int error, const char *detail) {
  napi_value message, code, result, errno_value, step_value;
  char text[640];
  snprintf(text, sizeof(text), "%s: %s%s%s", step, strerror(error), detail && *detail ? " (libbpf: " : "", detail && *detail ? detail : "");
  if (detail && *detail) strncat(text, ")", sizeof(text) - strlen(text) - 1);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  const char *name = error == EPERM ? "EPERM" : error == ENOENT ? "ENOENT" : error == EACCES ? "EACCES" : error == EINVAL ? "EINVAL" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &result);
  napi_create_int32(env, error, &errno_value);
  napi_set_named_property(env, result, "errno", errno_value);
  napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &step_value);
  napi_set_named_property(env, result, "syscall", step_value);
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
  bpf_link__destroy(s->iterator);
  s->iterator = NULL;
  bpf_link__destroy(s->state_changes);
  s->state_changes = NULL;
  bpf_object__close(s->object);
  s->object = NULL;
  free(s->queue.data);
  s->queue.data = NULL;
  s->queue.count = s->queue.capacity = 0;
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

/*
 * Reads an iterator to its end, straight into out's records if out is given; 0 or an errno. Asks
 * for 64 kB a read (the kernel gives up to its 32 kB buffer): each read() makes the kernel find its
 * place again by walking a storage bucket from its start, so that fewer reads are cheaper.
 */
#define ITERATOR_READ (64 * 1024)
static int read_iterator(struct bpf_link *link, records *out) {
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) return errno;
  static uint8_t discarded[ITERATOR_READ];
  size_t bytes = 0;
  int error = 0;
  for (;;) {
    uint8_t *into = discarded;
    if (out) {
      size_t wanted = (bytes + ITERATOR_READ) / RECORD_SIZE + 1;
      if (wanted > out->capacity) {
        uint8_t *grown = realloc(out->data, wanted * RECORD_SIZE);
        if (!grown) {
          error = ENOMEM;
          break;
        }
        out->data = grown;
        out->capacity = wanted;
      }
      into = out->data + bytes;
    }
    ssize_t n = read(fd, into, ITERATOR_READ);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : 0;
      break;
    }
    bytes += (size_t)n;
  }
  close(fd);
  if (out) out->count = bytes / RECORD_SIZE; /* whole records: the kernel writes each in one piece */
  return error;
}

/* Gives every TCP socket a file holds now its record, with its holder: one walk of every open file. */
static int seed(struct bpf_program *program) {
  struct bpf_link *link = bpf_program__attach_iter(program, NULL);
  if (!link) return errno;
  int error = read_iterator(link, NULL);
  bpf_link__destroy(link);
  return error;
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
  libbpf_set_print(keep_first_message);
  first_message[0] = 0;
  source *s = calloc(1, sizeof(*s));
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->consuming, NULL);
  const char *step;
  int error;
  s->object = bpf_object__open_file(path, NULL);
  if (!s->object) {
    error = errno;
    step = "open";
    goto failed;
  }
  if ((error = -bpf_object__load(s->object))) {
    step = "load";
    goto failed;
  }
  struct bpf_program *on_state_change = bpf_object__find_program_by_name(s->object, "on_state_change");
  struct bpf_program *seed_known = bpf_object__find_program_by_name(s->object, "seed_known");
  struct bpf_program *listed_sockets = bpf_object__find_program_by_name(s->object, "listed_sockets");
  struct bpf_map *known = bpf_object__find_map_by_name(s->object, "known");
  struct bpf_map *events = bpf_object__find_map_by_name(s->object, "events");
  struct bpf_map *counters = bpf_object__find_map_by_name(s->object, "counters");
  if (!on_state_change || !seed_known || !listed_sockets || !known || !events || !counters) {
    error = ENOENT;
    step = "find programs and maps";
    goto failed;
  }
  /* State changes first, so that no socket falls between the seed and them. */
  if (!(s->state_changes = bpf_program__attach(on_state_change))) {
    error = errno;
    step = "attach";
    goto failed;
  }
  if ((error = seed(seed_known))) {
    step = "seed";
    goto failed;
  }
  union bpf_iter_link_info of_map = {.map = {.map_fd = bpf_map__fd(known)}};
  DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, options, .link_info = &of_map, .link_info_len = sizeof(of_map));
  if (!(s->iterator = bpf_program__attach_iter(listed_sockets, &options))) {
    error = errno;
    step = "attach";
    goto failed;
  }
  s->counters_fd = bpf_map__fd(counters);
  s->ring = ring_buffer__new(bpf_map__fd(events), on_event, s, NULL);
  if (!s->ring) {
    error = errno;
    step = "ring buffer";
    goto failed;
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
  throw_failure(env, step, error ? error : EIO, first_message);
  return NULL;
}

static napi_value sockets(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  records out = {0};
  int error = read_iterator(s->iterator, &out);
  if (error) {
    free(out.data);
    throw_failure(env, "read known sockets", error, NULL);
    return NULL;
  }
  return to_buffer(env, &out);
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

static napi_value counters(napi_env env, napi_callback_info info) {
  source *s = get_source(env, info);
  if (!s) return NULL;
  uint64_t values[2] = {0, 0};
  for (uint32_t i = 0; i < 2; i++) bpf_map_lookup_elem(s->counters_fd, &i, &values[i]);
  pthread_mutex_lock(&s->lock);
  uint64_t dropped = s->dropped;
  pthread_mutex_unlock(&s->lock);
  napi_value result, n;
  napi_create_object(env, &result);
  napi_create_double(env, (double)values[0], &n);
  napi_set_named_property(env, result, "trackedFull", n);
  napi_create_double(env, (double)values[1], &n);
  napi_set_named_property(env, result, "eventsLost", n);
  napi_create_double(env, (double)dropped, &n);
  napi_set_named_property(env, result, "eventsDropped", n);
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
