/* Corpus replay driver: links with one fuzz target's LLVMFuzzerTestOneInput and feeds it every
 * file named on the command line (directories are walked one level). Built without libFuzzer so
 * `make check` replays the seed corpora under the plain and sanitizer builds. Prints TAP. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    n++;
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0;
#ifdef FUZZ_CORPUS
    if (argc == 1) {
        static char *def[] = {NULL, (char *)FUZZ_CORPUS, NULL};
        def[0] = argv[0];
        argv = def;
        argc = 2;
    }
#endif
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            bad++;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                char p[4096];
                int w = snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (w < 0 || (size_t)w >= sizeof p || run_file(p) != 0)
                    bad++;
            }
            if (d)
                closedir(d);
        } else if (run_file(argv[i]) != 0) {
            bad++;
        }
    }
    printf("%s 1 - replayed %d corpus inputs\n1..1\n", bad ? "not ok" : "ok", n);
    return bad ? 1 : 0;
}
