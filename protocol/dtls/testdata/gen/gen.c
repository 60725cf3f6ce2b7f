/*
 * gen.c writes golden AES-128-CCM-8 DTLS records for protocol/dtls using
 * mbedTLS's CCM (an implementation independent of the Go code under test).
 * It lays out each record and its additional data on its own, following
 * docs/dtls.md (Record layout, Record protection). Build and run with gen.sh.
 *
 * Output, one record a line, space-separated hex fields:
 *   name key iv epoch seq cid real_type content record
 * cid is "-" for records without a connection ID.
 */
#include <stdio.h>
#include <string.h>
#include <mbedtls/ccm.h>

struct vec {
	const char *name;
	unsigned char key[16];
	unsigned char iv[4];
	unsigned epoch;
	unsigned long long seq;
	int has_cid;
	unsigned char cid[8];
	unsigned char type;
	size_t len;
	unsigned char fill; /* content byte i is fill+i */
};

static void hex(const unsigned char *b, size_t n) {
	if (n == 0) { printf("-"); return; }
	for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

int main(void) {
	static const struct vec v[] = {
		{"plain-appdata", {0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x0c,0x0d,0x0e,0x0f},
		 {0xa0,0xa1,0xa2,0xa3}, 1, 5, 0, {0}, 23, 5, 'h'},
		{"plain-empty", {0xff,0xee,0xdd,0xcc,0xbb,0xaa,0x99,0x88,0x77,0x66,0x55,0x44,0x33,0x22,0x11,0x00},
		 {0x01,0x02,0x03,0x04}, 1, 0, 0, {0}, 23, 0, 0},
		{"plain-handshake-finished", {0x10,0x32,0x54,0x76,0x98,0xba,0xdc,0xfe,0x01,0x23,0x45,0x67,0x89,0xab,0xcd,0xef},
		 {0xde,0xad,0xbe,0xef}, 1, 0, 0, {0}, 22, 24, 0x14},
		{"cid-appdata-48", {0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x0c,0x0d,0x0e,0x0f},
		 {0xa0,0xa1,0xa2,0xa3}, 1, 0x10, 1, {0xc1,0xd0,0x00,0x01,0x02,0x03,0x04,0x05}, 23, 33, 0x40},
		{"cid-appdata-100", {0x2b,0x7e,0x15,0x16,0x28,0xae,0xd2,0xa6,0xab,0xf7,0x15,0x88,0x09,0xcf,0x4f,0x3c},
		 {0x11,0x22,0x33,0x44}, 1, 0x0000123456789aULL, 1, {0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08}, 23, 100, 0x00},
		{"cid-exact-block", {0x2b,0x7e,0x15,0x16,0x28,0xae,0xd2,0xa6,0xab,0xf7,0x15,0x88,0x09,0xcf,0x4f,0x3c},
		 {0x11,0x22,0x33,0x44}, 2, 0xffffffffffffULL, 1, {0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08}, 23, 15, 0x80},
		{"cid-alert-empty", {0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x0c,0x0d,0x0e,0x0f},
		 {0xa0,0xa1,0xa2,0xa3}, 1, 7, 1, {0xc1,0xd0,0x00,0x01,0x02,0x03,0x04,0x05}, 21, 0, 0},
		{"cid-handshake-finished", {0x10,0x32,0x54,0x76,0x98,0xba,0xdc,0xfe,0x01,0x23,0x45,0x67,0x89,0xab,0xcd,0xef},
		 {0xde,0xad,0xbe,0xef}, 1, 0, 1, {0xaa,0xbb,0xcc,0xdd,0xee,0xff,0x00,0x11}, 22, 24, 0x14},
	};
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		const struct vec *t = &v[k];
		unsigned char content[256], plain[300], out[400], aad[32], nonce[12], tag[8];
		size_t plen = 0, alen = 0, n = 0;
		for (size_t i = 0; i < t->len; i++) content[i] = (unsigned char)(t->fill + i);
		memcpy(plain, content, t->len);
		plen = t->len;
		if (t->has_cid) { /* inner plaintext: content, real type, zeros to a multiple of 16 */
			plain[plen++] = t->type;
			while (plen % 16 != 0) plain[plen++] = 0;
		}
		unsigned char ctr[8] = {
			(unsigned char)(t->epoch >> 8), (unsigned char)t->epoch,
			(unsigned char)(t->seq >> 40), (unsigned char)(t->seq >> 32), (unsigned char)(t->seq >> 24),
			(unsigned char)(t->seq >> 16), (unsigned char)(t->seq >> 8), (unsigned char)t->seq};
		unsigned char wtype = t->has_cid ? 25 : t->type;
		/* additional data */
		memcpy(aad, ctr, 8); alen = 8;
		aad[alen++] = wtype; aad[alen++] = 0xfe; aad[alen++] = 0xfd;
		if (t->has_cid) { memcpy(aad + alen, t->cid, 8); alen += 8; aad[alen++] = 8; }
		aad[alen++] = (unsigned char)(plen >> 8); aad[alen++] = (unsigned char)plen;
		memcpy(nonce, t->iv, 4); memcpy(nonce + 4, ctr, 8);
		/* record */
		out[n++] = wtype; out[n++] = 0xfe; out[n++] = 0xfd;
		memcpy(out + n, ctr, 8); n += 8;
		if (t->has_cid) { memcpy(out + n, t->cid, 8); n += 8; }
		size_t blen = 8 + plen + 8;
		out[n++] = (unsigned char)(blen >> 8); out[n++] = (unsigned char)blen;
		memcpy(out + n, ctr, 8); n += 8;
		mbedtls_ccm_context ctx;
		mbedtls_ccm_init(&ctx);
		if (mbedtls_ccm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, t->key, 128) != 0) return 1;
		if (mbedtls_ccm_encrypt_and_tag(&ctx, plen, nonce, 12, aad, alen, plain, out + n, tag, 8) != 0) return 1;
		mbedtls_ccm_free(&ctx);
		n += plen;
		memcpy(out + n, tag, 8); n += 8;
		printf("%s ", t->name); hex(t->key, 16); printf(" "); hex(t->iv, 4);
		printf(" %u %llu ", t->epoch, t->seq);
		if (t->has_cid) hex(t->cid, 8); else printf("-");
		printf(" %u ", t->type); hex(content, t->len); printf(" "); hex(out, n); printf("\n");
	}
	return 0;
}
