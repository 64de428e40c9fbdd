/* Where the service is and who we are. The token comes from OMS_TOKEN,
 * OMS_TOKEN_FILE, or the credentials file `oms login` writes (0600; like
 * ssh with a private key, a group- or world-readable one is refused). The
 * token is never printed: messages name the source, not the value. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/alloc.h"

#define MAX_TOKEN 16384

/* OMS_CREDENTIALS_FILE, else $XDG_CONFIG_HOME/oms/credentials, else
 * ~/.config/oms/credentials. malloc'd; NULL without a home. */
static char *credentials_path(void)
{
    const char *f = getenv("OMS_CREDENTIALS_FILE");
    if (f && *f)
        return oms_xstrdup(f);
    const char *x = getenv("XDG_CONFIG_HOME");
    if (x && *x)
        return oms_xasprintf("%s/oms/credentials", x);
    const char *home = getenv("HOME");
    return home && *home ? oms_xasprintf("%s/.config/oms/credentials", home) : NULL;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* Reads at most MAX_TOKEN bytes of an open file. */
static char *read_all(int fd)
{
    char *buf = oms_xmalloc(MAX_TOKEN + 1);
    size_t n = 0;
    while (n < MAX_TOKEN) {
        ssize_t k = read(fd, buf + n, MAX_TOKEN - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    return buf;
}

static char *token_from_file(const char *path, const char *what)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "oms: %s: cannot read %s: %s\n", what, path, strerror(errno));
        return NULL;
    }
    char *t = read_all(fd);
    close(fd);
    if (t) {
        t[strcspn(t, "\r\n")] = '\0';
        trim(t);
    }
    if (!t || !*t) {
        fprintf(stderr, "oms: %s: %s holds no token\n", what, path);
        free(t);
        return NULL;
    }
    return t;
}

/* The credentials file: "url=..." and "token=..." lines. *found is false
 * when there is none (not an error). */
static int read_credentials(char **url, char **token, bool *found)
{
    *found = false;
    char *path = credentials_path();
    if (!path)
        return OMS_CLI_OK;
    int code = OMS_CLI_OK;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "oms: credentials file %s: %s\n", path, strerror(errno));
            code = OMS_CLI_USAGE;
        }
        goto cleanup;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "oms: credentials file %s is not a regular file\n", path);
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "oms: credentials file %s: permissions %04o are too open (others may read the token); "
                        "chmod 600 it or run `oms login` again\n", path, (unsigned)(st.st_mode & 07777));
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (!(text = read_all(fd))) {
        code = OMS_CLI_FAILED;
        goto cleanup;
    }
    *found = true;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        trim(line);
        if (!strncmp(line, "url=", 4) && !*url)
            *url = oms_xstrdup(line + 4);
        else if (!strncmp(line, "token=", 6) && !*token)
            *token = oms_xstrdup(line + 6);
    }
cleanup:
    if (fd >= 0)
        close(fd);
    if (text) {
        memset(text, 0, strlen(text));
        free(text);
    }
    free(path);
    return code;
}

int oms_cli_configure(oms_cli *c)
{
    const char *url = getenv("OMS_URL"), *tok = getenv("OMS_TOKEN"), *tokf = getenv("OMS_TOKEN_FILE");
    const char *ca = getenv("OMS_CA_FILE");
    if (tok && *tok && tokf && *tokf) {
        fprintf(stderr, "oms: set OMS_TOKEN or OMS_TOKEN_FILE, not both\n");
        return OMS_CLI_USAGE;
    }
    char *cred_url = NULL, *cred_token = NULL;
    bool found = false;
    int code = read_credentials(&cred_url, &cred_token, &found);
    if (code)
        goto cleanup;
    if (url && *url)
        c->url = oms_xstrdup(url);
    else if (cred_url)
        c->url = oms_xstrdup(cred_url);
    if (tok && *tok)
        c->token = oms_xstrdup(tok);
    else if (tokf && *tokf)
        c->token = token_from_file(tokf, "OMS_TOKEN_FILE");
    else if (cred_token)
        c->token = oms_xstrdup(cred_token);
    if (ca && *ca)
        c->ca_file = oms_xstrdup(ca);
    if (!c->url) {
        fprintf(stderr, "oms: OMS_URL is required (e.g. https://oms.example.org), or `oms login --url`\n");
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    size_t n = strlen(c->url);
    while (n && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8)) {
        fprintf(stderr, "oms: OMS_URL must start with http:// or https://\n");
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (!c->token) {
        if (!tokf)
            fprintf(stderr, "oms: no token: set OMS_TOKEN or OMS_TOKEN_FILE, or run `oms login --token-file FILE`\n");
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (strpbrk(c->token, "\r\n ")) {
        fprintf(stderr, "oms: the token contains whitespace\n");
        code = OMS_CLI_USAGE;
    }
cleanup:
    free(cred_url);
    if (cred_token) {
        memset(cred_token, 0, strlen(cred_token));
        free(cred_token);
    }
    return code;
}

void oms_cli_unconfigure(oms_cli *c)
{
    if (c->token) {
        memset(c->token, 0, strlen(c->token));
        free(c->token);
    }
    free(c->url);
    free(c->ca_file);
    c->token = c->url = c->ca_file = NULL;
}

/* mkdir -p of the credentials file's directory, 0700. */
static int make_parent(const char *path)
{
    char *d = oms_xstrdup(path);
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0700) && errno != EEXIST) {
            free(d);
            return -1;
        }
        *p = '/';
    }
    free(d);
    return 0;
}

/* oms login --token-file FILE|- [--url URL]: stores both in the credentials
 * file, created 0600 whatever the umask, replaced atomically. */
int oms_cli_cmd_login(oms_cli *c, int argc, char **argv)
{
    const char *file = NULL, *url = getenv("OMS_URL");
    oms_cli_opt opts[] = {{"--token-file", NULL, &file, NULL}, {"--url", NULL, &url, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, NULL, 0, NULL);
    if (code)
        return code;
    if (!file || !url)
        return oms_cli_usage("oms login --token-file FILE|- --url URL (or OMS_URL)");
    char *token = !strcmp(file, "-") ? read_all(STDIN_FILENO) : token_from_file(file, "--token-file");
    char *path = credentials_path(), *tmp = NULL;
    int fd = -1;
    code = OMS_CLI_FAILED;
    if (!token || !path)
        goto cleanup;
    token[strcspn(token, "\r\n")] = '\0';
    trim(token);
    if (!*token || strpbrk(token, " \t")) {
        fprintf(stderr, "oms: login: no usable token in %s\n", file);
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        fprintf(stderr, "oms: login: the URL must start with http:// or https://\n");
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    if (make_parent(path)) {
        fprintf(stderr, "oms: login: cannot create the directory of %s\n", path);
        goto cleanup;
    }
    tmp = oms_xasprintf("%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600)) {
        fprintf(stderr, "oms: login: cannot write %s: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    FILE *fp = fdopen(fd, "w");
    if (!fp)
        goto cleanup;
    fd = -1;
    int bad = fprintf(fp, "url=%s\ntoken=%s\n", url, token) < 0;
    bad |= fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path)) {
        fprintf(stderr, "oms: login: cannot write %s\n", path);
        unlink(tmp);
        goto cleanup;
    }
    if (!c->json)
        printf("credentials for %s saved in %s (mode 0600)\n", url, path);
    code = OMS_CLI_OK;
cleanup:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    free(tmp);
    free(path);
    return code;
}

int oms_cli_cmd_logout(oms_cli *c, int argc, char **argv)
{
    int code = oms_cli_parse(c, argc, argv, (oms_cli_opt[]){{0}}, NULL, 0, NULL);
    if (code)
        return code;
    char *path = credentials_path();
    if (!path)
        return OMS_CLI_FAILED;
    if (unlink(path) && errno != ENOENT) {
        fprintf(stderr, "oms: logout: cannot remove %s: %s\n", path, strerror(errno));
        code = OMS_CLI_FAILED;
    }
    free(path);
    return code;
}
