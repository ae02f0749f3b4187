/*
 * test_codec.c - the codec against the Go codec's golden fixtures.
 *
 * Every valid fixture must decode, match its expected value, and re-encode
 * to its own bytes (or its canonical bytes); every invalid one must be
 * rejected with its kind. The expected values are in expected.txt, one line
 * per valid case: name, the datagram in hex, and the decoded message written
 * out field by field (dump.c). The Go end-to-end tests (tests/firmware)
 * check the same file against the Go decoder, so that C and Go agree on the
 * value of every case, not only on accepting it.
 */
#include "dump.h"
#include "fixtures.h"
#include "mqttsn.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* expected.txt: "name hex dump..." per line */
typedef struct {
	char name[64];
	char hex[2 * FX_MAX_DATA + 2];
	char dump[2 * FX_MAX_DATA + 600];
	int used;
} expect_t;

static int load_expected(const char *file, expect_t **out)
{
	FILE *f = fopen(file, "r");
	static char line[sizeof(expect_t)];
	int n = 0, cap = 0;
	expect_t *all = NULL;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		char *name = strtok(line, " \n"), *hex = strtok(NULL, " \n"), *rest = strtok(NULL, "\n");
		if (name == NULL || name[0] == '#')
			continue;
		if (hex == NULL || rest == NULL)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			all = realloc(all, (size_t)cap * sizeof *all);
		}
		memset(&all[n], 0, sizeof all[n]);
		snprintf(all[n].name, sizeof all[n].name, "%s", name);
		snprintf(all[n].hex, sizeof all[n].hex, "%s", hex);
		snprintf(all[n].dump, sizeof all[n].dump, "%s", rest);
		n++;
	}
	fclose(f);
	*out = all;
	return n;
}

int codec_tests(const char *dir, const char *expected_file, int write_expected)
{
	fixture_t *fx;
	expect_t *exp = NULL;
	int n = fixtures_load(dir, &fx), nexp = 0, valid = 0, invalid = 0;
	static char got[sizeof(expect_t)], hex[2 * FX_MAX_DATA + 2];
	static uint8_t enc[FX_MAX_DATA + 8];
	FILE *w = NULL;
	test_name = "codec_fixtures";
	CHECKF(n > 0, "no fixtures in %s", dir);
	if (n <= 0)
		return 0;
	if (write_expected) {
		w = fopen(expected_file, "w");
		CHECKF(w != NULL, "cannot write %s", expected_file);
		if (w == NULL)
			return 0;
		fprintf(w, "# The decoded value of every valid fixture of mqttsn/packet/testdata, for the C tests;\n"
			   "# tests/firmware checks every line against the Go decoder. Regenerate with\n"
			   "# build/test-gcc FIXTURES -write-expected mqttsn/test/expected.txt, then run both.\n");
	} else {
		nexp = load_expected(expected_file, &exp);
		CHECKF(nexp > 0, "cannot read %s", expected_file);
	}
	for (int i = 0; i < n; i++) {
		const fixture_t *f = &fx[i];
		mqttsn_msg_t m;
		int err = mqttsn_decode(&m, f->data, f->len);
		test_name = f->name;
		if (!f->ok) {
			invalid++;
			CHECKF(err != 0, "%s:%d: decoded, want error %s", f->file, f->line, f->kind);
			if (err != 0)
				CHECKF(strcmp(mqttsn_err_name(err), f->kind) == 0, "%s:%d: error %s, want %s", f->file,
				       f->line, mqttsn_err_name(err), f->kind);
			continue;
		}
		valid++;
		CHECKF(err == 0, "%s:%d: error %s, want ok", f->file, f->line, mqttsn_err_name(err));
		if (err != 0)
			continue;
		dump(got, sizeof got, &m);
		hexs(hex, f->data, f->len);
		if (w) {
			fprintf(w, "%s %s %s\n", f->name, hex, got);
		} else {
			int j;
			for (j = 0; j < nexp && strcmp(exp[j].name, f->name) != 0; j++)
				;
			CHECKF(j < nexp, "%s:%d: no line in %s", f->file, f->line, expected_file);
			if (j < nexp) {
				exp[j].used = 1;
				CHECKF(strcmp(exp[j].hex, hex) == 0, "%s: hex differs from the fixture", f->name);
				CHECKF(strcmp(exp[j].dump, got) == 0, "decoded\n  %s\nwant\n  %s", got, exp[j].dump);
			}
		}
		/* re-encode: the same bytes, or the canonical ones */
		{
			const uint8_t *want = f->has_canonical ? f->canonical : f->data;
			size_t wlen = f->has_canonical ? f->canonical_len : f->len;
			int k = mqttsn_encode(&m, enc, sizeof enc);
			CHECKF(k >= 0, "encode: %s", mqttsn_err_name(k));
			CHECKF(k < 0 || mqttsn_encoded_len(&m) == (size_t)k, "encoded_len %zu, encode %d",
			       mqttsn_encoded_len(&m), k);
			CHECKF(k < 0 || ((size_t)k == wlen && memcmp(enc, want, wlen) == 0),
			       "re-encoding differs from the fixture");
			/* a buffer one octet short is refused, not overrun */
			if (k > 0) {
				uint8_t *tight = malloc((size_t)k - 1 + 1);
				CHECK(mqttsn_encode(&m, tight, (size_t)k - 1) == MQTTSN_ERR_TOO_LARGE);
				free(tight);
			}
		}
	}
	test_name = "codec_fixtures";
	for (int j = 0; j < nexp; j++)
		CHECKF(exp[j].used, "%s: line of %s without a valid fixture", exp[j].name, expected_file);
	if (w)
		fclose(w);
	printf("codec: %d fixtures (%d valid, %d invalid)\n", n, valid, invalid);
	free(exp);
	free(fx);
	return n;
}

/* write_seeds writes every fixture's datagram as a file, the fuzzer's seeds. */
int write_seeds(const char *dir, const char *out_dir)
{
	fixture_t *fx;
	int n = fixtures_load(dir, &fx);
	for (int i = 0; i < n; i++) {
		char path[1024];
		FILE *f;
		snprintf(path, sizeof path, "%s/%s", out_dir, fx[i].name);
		f = fopen(path, "wb");
		if (f == NULL)
			return -1;
		fwrite(fx[i].data, 1, fx[i].len, f);
		fclose(f);
	}
	free(fx);
	return n;
}
