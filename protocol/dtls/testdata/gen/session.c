/*
 * session.c runs a full DTLS 1.2 handshake between an mbedTLS client and an
 * mbedTLS server in memory, with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and the
 * draft connection ID (the server hands out an 8-byte CID, the client asks
 * for none), as Particle's firmware and cloud do. It then prints the session
 * secrets and application-data records of both directions, so the Go record
 * layer can be checked end to end against an independent implementation:
 * key block from the master secret, CID record layout, additional data,
 * inner plaintext and padding, and both Finished messages. Needs mbedTLS 2.x built with
 * MBEDTLS_SSL_DTLS_CONNECTION_ID (see gen.sh). Usage: session KEY.pem CERT.pem
 */
#include <stdio.h>
#include <string.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/timing.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/pk.h>

#define MAXQ 32
struct queue { unsigned char d[MAXQ][2048]; size_t n[MAXQ]; int head, tail; };
static struct queue to_server, to_client;
static int capture; /* print records the client and server send */
static int handshake_log = 1; /* print every handshake datagram */
static unsigned char last_client[2048], last_server[2048];
static size_t last_client_len, last_server_len;

static void dgram(const char *dir, const unsigned char *b, size_t n) {
	printf("%s ", dir);
	for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
	printf("\n");
}
static int qsend(struct queue *q, const unsigned char *b, size_t n) {
	if (q->tail - q->head >= MAXQ || n > 2048) return MBEDTLS_ERR_SSL_WANT_WRITE;
	memcpy(q->d[q->tail % MAXQ], b, n); q->n[q->tail % MAXQ] = n; q->tail++;
	return (int)n;
}
static int qrecv(struct queue *q, unsigned char *b, size_t n) {
	if (q->head == q->tail) return MBEDTLS_ERR_SSL_WANT_READ;
	size_t m = q->n[q->head % MAXQ]; if (m > n) m = n;
	memcpy(b, q->d[q->head % MAXQ], m); q->head++;
	return (int)m;
}
static int client_send(void *c, const unsigned char *b, size_t n) {
	(void)c; if (capture) { memcpy(last_client, b, n); last_client_len = n; }
	if (handshake_log) dgram("c2s", b, n);
	return qsend(&to_server, b, n);
}
static int server_send(void *c, const unsigned char *b, size_t n) {
	(void)c; if (capture) { memcpy(last_server, b, n); last_server_len = n; }
	if (handshake_log) dgram("s2c", b, n);
	return qsend(&to_client, b, n);
}
static int client_recv(void *c, unsigned char *b, size_t n) { (void)c; return qrecv(&to_client, b, n); }
static int server_recv(void *c, unsigned char *b, size_t n) { (void)c; return qrecv(&to_server, b, n); }

static unsigned char master[48], crandom[32], srandom[32], keyblock[40];
static int export_keys(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen,
	size_t keylen, size_t ivlen, const unsigned char cr[32], const unsigned char sr[32],
	mbedtls_tls_prf_types prf) {
	(void)p; (void)prf;
	if (maclen != 0 || keylen != 16 || ivlen != 12) { /* mbedTLS reports the full AEAD IV length */ }
	memcpy(master, ms, 48); memcpy(crandom, cr, 32); memcpy(srandom, sr, 32);
	memcpy(keyblock, kb, 40);
	return 0;
}

static void hex(const char *label, const unsigned char *b, size_t n) {
	printf("%s ", label);
	for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
	printf("\n");
}

int main(int argc, char **argv) {
	if (argc != 3) { fprintf(stderr, "usage: session KEY.pem CERT.pem\n"); return 2; }
	printf("# mbedTLS 2.22 (Particle fork) with MBEDTLS_SSL_DTLS_CONNECTION_ID; made by session.c (gen.sh)\n");
	printf("# c2s/s2c: the handshake datagrams in the order sent\n");
	static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, 0};
	static const unsigned char cid[8] = {0xc1, 0xd0, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
	mbedtls_entropy_context ent; mbedtls_ctr_drbg_context rng;
	mbedtls_x509_crt crt; mbedtls_pk_context key;
	mbedtls_ssl_config ccf, scf; mbedtls_ssl_context cli, srv;
	mbedtls_timing_delay_context ct, st;
	mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&rng);
	mbedtls_x509_crt_init(&crt); mbedtls_pk_init(&key);
	mbedtls_ssl_config_init(&ccf); mbedtls_ssl_config_init(&scf);
	mbedtls_ssl_init(&cli); mbedtls_ssl_init(&srv);
	if (mbedtls_ctr_drbg_seed(&rng, mbedtls_entropy_func, &ent, NULL, 0) ||
	    mbedtls_x509_crt_parse_file(&crt, argv[2]) || mbedtls_pk_parse_keyfile(&key, argv[1], NULL)) {
		fprintf(stderr, "setup failed\n"); return 1;
	}
	mbedtls_ssl_config_defaults(&ccf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_DATAGRAM, MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_config_defaults(&scf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_DATAGRAM, MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_config *confs[2] = {&ccf, &scf};
	for (int i = 0; i < 2; i++) {
		mbedtls_ssl_conf_rng(confs[i], mbedtls_ctr_drbg_random, &rng);
		mbedtls_ssl_conf_ciphersuites(confs[i], suites);
		mbedtls_ssl_conf_authmode(confs[i], MBEDTLS_SSL_VERIFY_NONE);
		mbedtls_ssl_conf_export_keys_ext_cb(confs[i], export_keys, NULL);
	}
	mbedtls_ssl_conf_cid(&ccf, 0, MBEDTLS_SSL_UNEXPECTED_CID_IGNORE);
	mbedtls_ssl_conf_cid(&scf, 8, MBEDTLS_SSL_UNEXPECTED_CID_IGNORE);
	mbedtls_ssl_conf_own_cert(&scf, &crt, &key);
	mbedtls_ssl_conf_dtls_cookies(&scf, NULL, NULL, NULL);
	if (mbedtls_ssl_setup(&cli, &ccf) || mbedtls_ssl_setup(&srv, &scf)) { fprintf(stderr, "ssl_setup\n"); return 1; }
	mbedtls_ssl_set_bio(&cli, NULL, client_send, client_recv, NULL);
	mbedtls_ssl_set_bio(&srv, NULL, server_send, server_recv, NULL);
	mbedtls_ssl_set_timer_cb(&cli, &ct, mbedtls_timing_set_delay, mbedtls_timing_get_delay);
	mbedtls_ssl_set_timer_cb(&srv, &st, mbedtls_timing_set_delay, mbedtls_timing_get_delay);
	if (mbedtls_ssl_set_cid(&cli, MBEDTLS_SSL_CID_ENABLED, NULL, 0) ||
	    mbedtls_ssl_set_cid(&srv, MBEDTLS_SSL_CID_ENABLED, cid, sizeof cid)) { fprintf(stderr, "set_cid\n"); return 1; }
	int cdone = 0, sdone = 0;
	for (int i = 0; i < 200 && !(cdone && sdone); i++) {
		if (!cdone) { int r = mbedtls_ssl_handshake(&cli); if (r == 0) cdone = 1; else if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) { fprintf(stderr, "client handshake -0x%x\n", -r); return 1; } }
		if (!sdone) { int r = mbedtls_ssl_handshake(&srv); if (r == 0) sdone = 1; else if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE && r != MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED) { fprintf(stderr, "server handshake -0x%x\n", -r); return 1; } }
	}
	if (!cdone || !sdone) { fprintf(stderr, "handshake did not finish\n"); return 1; }
	handshake_log = 0;
	int enabled = 0; unsigned char peer[32]; size_t peer_len = 0;
	mbedtls_ssl_get_peer_cid(&cli, &enabled, peer, &peer_len);
	if (!enabled || peer_len != 8) { fprintf(stderr, "no CID negotiated\n"); return 1; }
	hex("master", master, 48); hex("client_random", crandom, 32); hex("server_random", srandom, 32);
	hex("key_block", keyblock, 40);
	const char *msgs[] = {"device says hello", "a longer device message that needs more than one padding block: 0123456789abcdef"};
	for (int k = 0; k < 2; k++) {
		capture = 1;
		if (mbedtls_ssl_write(&cli, (const unsigned char *)msgs[k], strlen(msgs[k])) < 0) return 1;
		capture = 0;
		unsigned char buf[256]; int n = mbedtls_ssl_read(&srv, buf, sizeof buf);
		if (n != (int)strlen(msgs[k]) || memcmp(buf, msgs[k], n) != 0) { fprintf(stderr, "server read %d\n", n); return 1; }
		hex("client_content", (const unsigned char *)msgs[k], strlen(msgs[k]));
		hex("client_record", last_client, last_client_len);
	}
	const char *reply = "server reply";
	capture = 1;
	if (mbedtls_ssl_write(&srv, (const unsigned char *)reply, strlen(reply)) < 0) return 1;
	capture = 0;
	hex("server_content", (const unsigned char *)reply, strlen(reply));
	hex("server_record", last_server, last_server_len);
	return 0;
}
