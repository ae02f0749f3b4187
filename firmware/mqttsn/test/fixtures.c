/*
 * fixtures.c - the annotated hex fixture format of
 * mqttsn/packet/testdata/README.md, read with the same strictness as the Go
 * tests: unknown keys, bad names, duplicate names, bad hex, missing desc,
 * hex or expect are errors.
 */
#define _DEFAULT_SOURCE /* DT_REG, strdup in glibc with -std=c99 */
#include "fixtures.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[] = {"truncated", "length", "trailing", "unknown_type", "flags",
				    "qos", "topic_id_type", "protocol_id", "client_id", "short_topic",
				    "topic_name", "return_code", "encapsulation"};

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* octets appends the hex pairs of s (up to a '#') to out. */
static int octets(const char *s, uint8_t *out, size_t *len)
{
	int half = -1;
	for (; *s && *s != '#'; s++) {
		int v;
		if (isspace((unsigned char)*s))
			continue;
		if (!isxdigit((unsigned char)*s))
			return -1;
		v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
		if (half < 0) {
			half = v;
		} else {
			if (*len >= FX_MAX_DATA)
				return -1;
			out[(*len)++] = (uint8_t)(half << 4 | v);
			half = -1;
		}
	}
	return half < 0 ? 0 : -1;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return 0;
	return 1;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int fixtures_load(const char *dir, fixture_t **out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *files[64];
	int nfiles = 0, n = 0, cap = 0, i, j;
	fixture_t *all = NULL;
	if (d == NULL) {
		fprintf(stderr, "fixtures: cannot open %s\n", dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL && nfiles < 64) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".hex") == 0)
			files[nfiles++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(files, (size_t)nfiles, sizeof files[0], cmp);
	for (i = 0; i < nfiles; i++) {
		char path[1024], buf[1024];
		int ln = 0;
		fixture_t *cur = NULL;
		FILE *f;
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		f = fopen(path, "r");
		if (f == NULL)
			goto bad;
		while (fgets(buf, sizeof buf, f) != NULL) {
			char *line = trim(buf), *colon, *key, *val;
			ln++;
			if (*line == '\0' || *line == '#')
				continue;
			colon = strchr(line, ':');
			if (colon == NULL) {
				fprintf(stderr, "%s:%d: no key\n", path, ln);
				goto badf;
			}
			*colon = '\0';
			key = line;
			val = trim(colon + 1);
			if (strcmp(key, "name") == 0) {
				if (!valid_name(val) || strlen(val) >= sizeof all[0].name) {
					fprintf(stderr, "%s:%d: bad case name %s\n", path, ln, val);
					goto badf;
				}
				for (j = 0; j < n; j++)
					if (strcmp(all[j].name, val) == 0) {
						fprintf(stderr, "%s:%d: case %s is also in %s\n", path, ln, val, all[j].file);
						goto badf;
					}
				if (n == cap) {
					cap = cap ? 2 * cap : 64;
					all = realloc(all, (size_t)cap * sizeof *all);
				}
				cur = &all[n++];
				memset(cur, 0, sizeof *cur);
				snprintf(cur->file, sizeof cur->file, "%s", files[i]);
				snprintf(cur->name, sizeof cur->name, "%s", val);
				cur->line = ln;
				continue;
			}
			if (cur == NULL) {
				fprintf(stderr, "%s:%d: %s before the first name\n", path, ln, key);
				goto badf;
			}
			if (strcmp(key, "desc") == 0) {
				cur->has_desc = *val != '\0';
			} else if (strcmp(key, "spec") == 0) {
				/* for people */
			} else if (strcmp(key, "hex") == 0) {
				if (octets(val, cur->data, &cur->len) != 0) {
					fprintf(stderr, "%s:%d: bad hex\n", path, ln);
					goto badf;
				}
				cur->has_hex = 1;
			} else if (strcmp(key, "canonical") == 0) {
				if (octets(val, cur->canonical, &cur->canonical_len) != 0) {
					fprintf(stderr, "%s:%d: bad hex\n", path, ln);
					goto badf;
				}
				cur->has_canonical = 1;
			} else if (strcmp(key, "expect") == 0) {
				if (strcmp(val, "ok") == 0) {
					cur->ok = 1;
				} else if (strncmp(val, "error ", 6) == 0) {
					for (j = 0; j < (int)(sizeof kinds / sizeof kinds[0]); j++)
						if (strcmp(val + 6, kinds[j]) == 0)
							break;
					if (j == (int)(sizeof kinds / sizeof kinds[0])) {
						fprintf(stderr, "%s:%d: bad expect %s\n", path, ln, val);
						goto badf;
					}
					snprintf(cur->kind, sizeof cur->kind, "%s", val + 6);
				} else {
					fprintf(stderr, "%s:%d: bad expect %s\n", path, ln, val);
					goto badf;
				}
			} else {
				fprintf(stderr, "%s:%d: unknown key %s\n", path, ln, key);
				goto badf;
			}
		}
		fclose(f);
		continue;
	badf:
		fclose(f);
		goto bad;
	}
	for (j = 0; j < n; j++) {
		fixture_t *fx = &all[j];
		if (!fx->has_desc || !fx->has_hex || (!fx->ok && fx->kind[0] == '\0') || (!fx->ok && fx->has_canonical)) {
			fprintf(stderr, "%s:%d: %s: incomplete case (desc, hex, expect)\n", fx->file, fx->line, fx->name);
			goto bad;
		}
	}
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	*out = all;
	return n;
bad:
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	free(all);
	return -1;
}
