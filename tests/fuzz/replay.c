/* Replays fuzz corpora without libFuzzer, so `make test` can run every fuzz
 * target under the sanitizers. Each argument is a file or a directory of
 * files; every input goes through LLVMFuzzerTestOneInput once. A crash fails
 * the process; an unreadable input is counted as a failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Reads a whole file into an exact-size buffer (so ASan sees over-reads). */
static int replay_file(const char *path)
{
    int rc = -1;
    unsigned char *buf = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        goto cleanup;
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf || fread(buf, 1, size, f) != size)
        goto cleanup;
    LLVMFuzzerTestOneInput(buf, size);
    rc = 0;
cleanup:
    if (rc != 0)
        fprintf(stderr, "cannot read %s\n", path);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Replays every regular file in dir, in name order. */
static void replay_dir(const char *dir, int *passed, int *failed)
{
    struct dirent **names;
    int n = scandir(dir, &names, not_hidden, alphasort);
    if (n < 0) {
        fprintf(stderr, "cannot read directory %s\n", dir);
        (*failed)++;
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(len);
        struct stat st;
        if (path) {
            snprintf(path, len, "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                *(replay_file(path) == 0 ? passed : failed) += 1;
        } else {
            (*failed)++;
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            replay_dir(argv[i], &passed, &failed);
        else
            *(replay_file(argv[i]) == 0 ? &passed : &failed) += 1;
    }
    const char *name = strrchr(argv[0], '/');
    printf("%s: %d passed, %d failed\n", name ? name + 1 : argv[0], passed, failed);
    return failed ? 1 : 0;
}
