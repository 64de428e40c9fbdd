/* Lock acquire + release over HTTP (SPEC §12): a small keep-alive HTTP/1.1
 * client, so the figures measure the server and not the client. Each of
 * `clients` threads owns one connection and locks its own resource
 * (object-types/R<i>) on one branch: acquire (POST /api/v1/locks), then
 * release (DELETE /api/v1/locks/{id}), `iterations` times after `warmup`.
 *
 *   locks_client PORT TOKEN BRANCH ITERATIONS WARMUP CLIENTS
 *
 * Prints one line of JSON: p50/p99/mean of the pair and of each half, in
 * microseconds, and pairs per second. Exits non-zero on any non-2xx answer. */
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

typedef struct {
    int port, iterations, warmup, index;
    const char *token, *branch;
    double *pair, *acq, *rel; /* microseconds, `iterations` each */
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

/* Sends one request and reads one response into buf; returns the status. */
static int roundtrip(int fd, const char *req, size_t len, char *buf, size_t cap, const char **body)
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
    buf[got] = '\0';
    *body = end + 4;
    return atoi(buf + 9);
}

static void *run(void *p)
{
    job *j = p;
    int fd = connect_to(j->port);
    char body[256], req[4096], buf[16384];
    int blen = snprintf(body, sizeof body,
                        "{\"branch\":\"%s\",\"resource_type\":\"object-types\",\"resource_id\":\"R%d\","
                        "\"reason\":\"bench\",\"ttl_seconds\":60}",
                        j->branch, j->index);
    for (int i = 0; i < j->warmup + j->iterations; i++) {
        const char *resp;
        int n = snprintf(req, sizeof req,
                         "POST /api/v1/locks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         j->token, blen, body);
        double t0 = now_us();
        int st = roundtrip(fd, req, (size_t)n, buf, sizeof buf, &resp);
        double t1 = now_us();
        const char *id = st == 201 ? strstr(resp, "\"id\":\"") : NULL;
        if (!id) {
            fprintf(stderr, "acquire answered %d: %.300s\n", st, resp ? resp : "");
            j->failed = 1;
            break;
        }
        char lid[64];
        snprintf(lid, sizeof lid, "%.36s", id + 6);
        n = snprintf(req, sizeof req,
                     "DELETE /api/v1/locks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", lid,
                     j->token);
        st = roundtrip(fd, req, (size_t)n, buf, sizeof buf, &resp);
        double t2 = now_us();
        if (st != 200) {
            fprintf(stderr, "release answered %d\n", st);
            j->failed = 1;
            break;
        }
        if (i >= j->warmup) {
            j->acq[i - j->warmup] = t1 - t0;
            j->rel[i - j->warmup] = t2 - t1;
            j->pair[i - j->warmup] = t2 - t0;
        }
    }
    close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats(const char *name, double *v, size_t n, int last)
{
    qsort(v, n, sizeof *v, cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    printf("\"%s\":{\"p50_us\":%.0f,\"p99_us\":%.0f,\"mean_us\":%.0f}%s", name, v[n / 2], v[(size_t)(n * 0.99)],
           sum / (double)n, last ? "" : ",");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: locks_client PORT TOKEN BRANCH ITERATIONS WARMUP CLIENTS\n");
        return 2;
    }
    int port = atoi(argv[1]), iters = atoi(argv[4]), warm = atoi(argv[5]), clients = atoi(argv[6]);
    size_t total = (size_t)iters * (size_t)clients;
    double *pair = calloc(total, sizeof *pair), *acq = calloc(total, sizeof *acq), *rel = calloc(total, sizeof *rel);
    job *jobs = calloc((size_t)clients, sizeof *jobs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double t0 = now_us();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (job){.port = port, .iterations = iters, .warmup = warm, .index = i, .token = argv[2],
                        .branch = argv[3], .pair = pair + (size_t)i * iters, .acq = acq + (size_t)i * iters,
                        .rel = rel + (size_t)i * iters};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    double secs = (now_us() - t0) / 1e6;
    if (failed)
        return 1;
    printf("{\"clients\":%d,\"pairs\":%zu,", clients, total);
    stats("pair", pair, total, 0);
    stats("acquire", acq, total, 0);
    stats("release", rel, total, 0);
    printf("\"pairs_per_s\":%.0f}\n", (double)(total + (size_t)warm * clients) / secs);
    free(pair), free(acq), free(rel), free(jobs), free(th);
    return 0;
}
