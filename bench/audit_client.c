/* Load client of bench/audit_bench.sh: `clients` threads, each with one
 * keep-alive HTTP/1.1 connection, for `seconds` seconds.
 *
 *   audit_client deny  PORT TOKEN SECONDS CLIENTS
 *       POST /api/v1/schemas/main/object-types with a viewer's token: every
 *       answer is a 403 sent only after its authz.denied event is durable.
 *   audit_client write PORT TOKEN SECONDS CLIENTS BRANCH
 *       POST /api/v1/schemas/BRANCH/shared-properties, a new resource each
 *       time: one durable commit with its audit event per request. A
 *       BRANCH ending in '-' gives each client its own: BRANCH-0, BRANCH-1...
 *
 * Prints one line of JSON: requests, requests per second, p50/p99/mean
 * latency in microseconds. Exits non-zero on an unexpected status. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

typedef struct {
    int port, index, write;
    double seconds;
    const char *token, *branch, *prefix;
    double *lat;
    size_t n, cap;
    int failed;
} job;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One request, one response (Content-Length bodies); the status or -1.
 * *closing is set when the server ends the connection after it (OMS closes
 * the connection of a refused request). */
static int roundtrip(int fd, const char *req, size_t len, char *buf, size_t cap, int *closing)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, req + off, len - off);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
    while (got < want) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    char *hdr_end = strstr(buf, "\r\n\r\n");
    *hdr_end = '\0';
    *closing = strcasestr(buf, "\r\nConnection: close") != NULL;
    *hdr_end = '\r';
    return atoi(buf + 9);
}

static void *run(void *p)
{
    job *j = p;
    int fd = connect_to(j->port);
    char body[256], req[4096], buf[16384];
    double stop = now_us() + j->seconds * 1e6;
    for (int i = 0; now_us() < stop; i++) {
        int blen, n;
        if (j->write) {
            blen = snprintf(body, sizeof body, "{\"api_name\":\"%s_%d_%d\",\"type\":\"string\"}", j->prefix,
                            j->index, i);
            /* BRANCH ending in '-' means one branch per client: BRANCH-0, BRANCH-1, ... */
            char branch[128];
            size_t bl = strlen(j->branch);
            if (bl && j->branch[bl - 1] == '-')
                snprintf(branch, sizeof branch, "%s%d", j->branch, j->index);
            else
                snprintf(branch, sizeof branch, "%s", j->branch);
            n = snprintf(req, sizeof req,
                         "POST /api/v1/schemas/%s/shared-properties HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer %s\r\nX-Issue-ID: BENCH-1\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         branch, j->token, blen, body);
        } else {
            blen = snprintf(body, sizeof body, "{\"api_name\":\"Denied\"}");
            n = snprintf(req, sizeof req,
                         "POST /api/v1/schemas/main/object-types HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         j->token, blen, body);
        }
        double t0 = now_us();
        int closing = 0;
        int st = roundtrip(fd, req, (size_t)n, buf, sizeof buf, &closing);
        double t1 = now_us();
        if (closing) {
            close(fd);
            fd = connect_to(j->port);
        }
        if (st != (j->write ? 201 : 403)) {
            fprintf(stderr, "answered %d: %.300s\n", st, buf);
            j->failed = 1;
            break;
        }
        if (j->n == j->cap) {
            j->cap = j->cap ? j->cap * 2 : 4096;
            j->lat = realloc(j->lat, j->cap * sizeof *j->lat);
        }
        j->lat[j->n++] = t1 - t0;
    }
    close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "deny") && strcmp(argv[1], "write")) || (!strcmp(argv[1], "write") && argc < 7)) {
        fprintf(stderr, "usage: audit_client deny|write PORT TOKEN SECONDS CLIENTS [BRANCH]\n");
        return 2;
    }
    int write_mode = !strcmp(argv[1], "write");
    int port = atoi(argv[2]), clients = atoi(argv[5]);
    double secs = atof(argv[4]);
    char prefix[32]; /* resource names unique to this run */
    snprintf(prefix, sizeof prefix, "B%lx", (unsigned long)now_us() % 0xfffffff);
    job *jobs = calloc((size_t)clients, sizeof *jobs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double t0 = now_us();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (job){.port = port, .index = i, .write = write_mode, .seconds = secs, .token = argv[3],
                        .branch = write_mode ? argv[6] : NULL, .prefix = prefix};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    int failed = 0;
    size_t total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
        total += jobs[i].n;
    }
    double elapsed = (now_us() - t0) / 1e6;
    if (failed || total == 0)
        return 1;
    double *all = malloc(total * sizeof *all), sum = 0;
    size_t k = 0;
    for (int i = 0; i < clients; i++) {
        memcpy(all + k, jobs[i].lat, jobs[i].n * sizeof *all);
        k += jobs[i].n;
        free(jobs[i].lat);
    }
    qsort(all, total, sizeof *all, cmp);
    for (size_t i = 0; i < total; i++)
        sum += all[i];
    printf("{\"mode\":\"%s\",\"clients\":%d,\"requests\":%zu,\"per_s\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,"
           "\"mean_us\":%.0f}\n",
           argv[1], clients, total, (double)total / elapsed, all[total / 2], all[(size_t)((double)total * 0.99)],
           sum / (double)total);
    free(all);
    free(jobs);
    free(th);
    return 0;
}
