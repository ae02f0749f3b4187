/*
 * The bridge framing codec against the golden frames shared with the Go side
 * (the *.hex files of serialbus/testdata/bridge, format in its README.md), read at run
 * time: every case's byte stream is decoded byte by byte and what the
 * decoder reports must be the case's expect:/error: lines in order; a
 * canonical case re-encodes to its exact bytes; every decoded frame encodes
 * to bytes that decode to the same value.
 *
 * usage: test_golden DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_frame.h"
#include "frame_text.h"

#define MAX_RESULTS 16
#define LINE_MAX_LEN 16384
#define STREAM_MAX 16384
#define TEXT_MAX 4096

static int failures;

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fputc('\n', stderr);                                                                                           \
        failures++;                                                                                                    \
    } while (0)

typedef struct gcase {
    char file[256];
    char name[128];
    int canonical;
    size_t max;
    int nwant;
    char want[MAX_RESULTS][TEXT_MAX];
    size_t len;
    unsigned char bytes[STREAM_MAX];
} gcase;

/* Decodes the whole of body (a frame without CRC) and checks that encoding
 * it and decoding the encoding gives the same text again. */
static void check_round_trip(const gcase *c, const bridge_frame *f, const char *text)
{
    static unsigned char wire[BRIDGE_WIRE_MAX(BRIDGE_DEFAULT_FRAME_MAX)];
    static unsigned char buf[BRIDGE_DEFAULT_FRAME_MAX];
    static char again[TEXT_MAX];
    bridge_decoder d;
    size_t n = bridge_frame_encode(f, wire, sizeof wire), i;
    int got = 0;
    if (n == 0) {
        FAIL("%s/%s: %s does not encode", c->file, c->name, text);
        return;
    }
    bridge_decoder_init(&d, buf, sizeof buf);
    for (i = 0; i < n; i++) {
        int r = bridge_decoder_put(&d, wire[i]);
        if (r < 0) {
            FAIL("%s/%s: the encoding of %s decodes with %s", c->file, c->name, text, bridge_error_name(r));
            return;
        }
        if (r > 0) {
            bridge_frame g;
            if (bridge_frame_decode(buf, (size_t)r, &g) != 0 || i != n - 1) {
                FAIL("%s/%s: the encoding of %s does not decode as one frame", c->file, c->name, text);
                return;
            }
            format_frame(again, sizeof again, &g);
            if (strcmp(again, text) != 0)
                FAIL("%s/%s: round trip gives %s, want %s", c->file, c->name, again, text);
            got = 1;
        }
    }
    if (!got)
        FAIL("%s/%s: the encoding of %s gives no frame", c->file, c->name, text);
}

static void run_case(gcase *c)
{
    static unsigned char buf[BRIDGE_DEFAULT_FRAME_MAX];
    static unsigned char body[BRIDGE_DEFAULT_FRAME_MAX];
    static unsigned char wire[BRIDGE_WIRE_MAX(BRIDGE_DEFAULT_FRAME_MAX)];
    static char got[MAX_RESULTS][TEXT_MAX];
    bridge_decoder d;
    bridge_frame last;
    size_t i, body_len = 0;
    int ngot = 0, nexpect = 0, nerror = 0, k;
    if (c->max > sizeof buf) {
        FAIL("%s/%s: max %zu is beyond the test's buffer", c->file, c->name, c->max);
        return;
    }
    memset(&last, 0, sizeof last);
    bridge_decoder_init(&d, buf, c->max);
    for (i = 0; i < c->len; i++) {
        int r = bridge_decoder_put(&d, c->bytes[i]);
        char *out = got[ngot < MAX_RESULTS ? ngot : MAX_RESULTS - 1];
        if (r == 0)
            continue;
        if (r < 0) {
            snprintf(out, TEXT_MAX, "error: %s", bridge_error_name(r));
        } else {
            bridge_frame f;
            int err;
            memcpy(body, buf, (size_t)r);
            body_len = (size_t)r;
            err = bridge_frame_decode(body, body_len, &f);
            if (err != 0) {
                snprintf(out, TEXT_MAX, "error: %s", bridge_error_name(err));
            } else {
                strcpy(out, "expect: ");
                format_frame(out + 8, TEXT_MAX - 8, &f);
                check_round_trip(c, &f, out + 8);
                last = f;
            }
        }
        if (ngot < MAX_RESULTS)
            ngot++;
    }
    for (k = 0; k < ngot || k < c->nwant; k++) {
        const char *g = k < ngot ? got[k] : "(nothing)";
        const char *w = k < c->nwant ? c->want[k] : "(nothing)";
        if (strcmp(g, w) != 0)
            FAIL("%s/%s: result %d is\n  %s\nwant\n  %s", c->file, c->name, k + 1, g, w);
    }
    for (k = 0; k < c->nwant; k++) {
        if (strncmp(c->want[k], "expect:", 7) == 0)
            nexpect++;
        else
            nerror++;
    }
    /* README: one expect:, no error:, canonical -> encoding gives the bytes back. */
    if (nexpect == 1 && nerror == 0 && c->canonical && ngot == 1 && strncmp(got[0], "expect:", 7) == 0) {
        size_t n = bridge_frame_encode(&last, wire, sizeof wire);
        if (n != c->len || memcmp(wire, c->bytes, n) != 0) {
            static char a[2 * sizeof wire + 1], b[2 * STREAM_MAX + 1];
            hex(a, wire, n);
            hex(b, c->bytes, c->len);
            FAIL("%s/%s: encodes as\n  %s\nwant\n  %s", c->file, c->name, a, b);
        }
    }
}

static char *trim(char *s)
{
    size_t n;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int parse_hex_line(gcase *c, char *s)
{
    char *hash = strchr(s, '#');
    char *tok;
    if (hash != NULL)
        *hash = '\0';
    for (tok = strtok(s, " \t"); tok != NULL; tok = strtok(NULL, " \t")) {
        char *end;
        unsigned long v;
        if (strlen(tok) != 2)
            return -1;
        v = strtoul(tok, &end, 16);
        if (*end != '\0' || c->len >= STREAM_MAX)
            return -1;
        c->bytes[c->len++] = (unsigned char)v;
    }
    return 0;
}

/* Runs every case of one file; returns how many there were. */
static int run_file(const char *dir, const char *name)
{
    static char line[LINE_MAX_LEN];
    static gcase c;
    char path[1024];
    FILE *fp;
    int ncases = 0, in_case = 0, lineno = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "r");
    if (fp == NULL) {
        FAIL("open %s", path);
        return 0;
    }
    for (;;) {
        char *s = fgets(line, sizeof line, fp);
        if (s != NULL) {
            lineno++;
            s = trim(s);
        }
        if (s == NULL || strncmp(s, "=== ", 4) == 0) {
            if (in_case) {
                run_case(&c);
                ncases++;
            }
            if (s == NULL)
                break;
            memset(&c, 0, sizeof c);
            snprintf(c.file, sizeof c.file, "%s", name);
            snprintf(c.name, sizeof c.name, "%s", trim(s + 4));
            c.canonical = 1;
            c.max = BRIDGE_DEFAULT_FRAME_MAX;
            in_case = 1;
            continue;
        }
        if (*s == '\0' || *s == '#')
            continue;
        if (!in_case) {
            FAIL("%s:%d: a line outside a case", name, lineno);
            continue;
        }
        if (strncmp(s, "desc:", 5) == 0)
            continue;
        if (strncmp(s, "canonical:", 10) == 0) {
            c.canonical = strcmp(trim(s + 10), "no") != 0;
        } else if (strncmp(s, "max:", 4) == 0) {
            c.max = (size_t)strtoul(trim(s + 4), NULL, 10);
        } else if (strncmp(s, "expect:", 7) == 0 || strncmp(s, "error:", 6) == 0) {
            if (c.nwant == MAX_RESULTS) {
                FAIL("%s:%d: too many results", name, lineno);
                continue;
            }
            snprintf(c.want[c.nwant++], TEXT_MAX, "%s", s);
        } else if (parse_hex_line(&c, s) != 0) {
            FAIL("%s:%d: not a hex line: %s", name, lineno, s);
        }
    }
    fclose(fp);
    if (ncases == 0)
        FAIL("%s: no cases", path);
    return ncases;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    static char names[64][256];
    char *sorted[64];
    DIR *dp;
    struct dirent *e;
    int nfiles = 0, ncases = 0, i;
    if (argc != 2) {
        fprintf(stderr, "usage: %s serialbus/testdata/bridge\n", argv[0]);
        return 2;
    }
    /* §2.1's check value. */
    if (bridge_crc16(BRIDGE_CRC_INIT, (const uint8_t *)"123456789", 9) != 0x29B1u)
        FAIL("CRC of 123456789 is not 0x29B1");
    dp = opendir(argv[1]);
    if (dp == NULL) {
        perror(argv[1]);
        return 1;
    }
    while ((e = readdir(dp)) != NULL && nfiles < 64) {
        size_t n = strlen(e->d_name);
        if (n > 4 && n < 256 && strcmp(e->d_name + n - 4, ".hex") == 0) {
            strcpy(names[nfiles], e->d_name);
            sorted[nfiles] = names[nfiles];
            nfiles++;
        }
    }
    closedir(dp);
    qsort(sorted, (size_t)nfiles, sizeof sorted[0], cmp);
    for (i = 0; i < nfiles; i++)
        ncases += run_file(argv[1], sorted[i]);
    /* The three files held 20 cases when this test was written. */
    if (nfiles < 3 || ncases < 20)
        FAIL("only %d cases in %d files in %s", ncases, nfiles, argv[1]);
    if (failures) {
        fprintf(stderr, "test_golden: %d failures\n", failures);
        return 1;
    }
    printf("test_golden: %d golden cases in %d files pass\n", ncases, nfiles);
    return 0;
}
