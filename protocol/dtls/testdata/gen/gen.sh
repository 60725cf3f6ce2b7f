#!/bin/sh
# gen.sh regenerates the golden vectors in protocol/dtls/testdata from two
# implementations independent of the Go code: mbedTLS's CCM (gen.c) for
# records and OpenSSL's TLS1-PRF for key derivation. Needs libmbedtls-dev
# and OpenSSL 3 (openssl kdf). Run from this directory. The session vectors
# need Particle's mbedTLS fork; see the end of this file.
set -eu
out=..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -o "$tmp/gen" gen.c -lmbedcrypto
"$tmp/gen" >"$out/ccm8_records.txt"

# prf NAME SECRET_HEX LABEL SEED_HEX LEN: one PRF vector line.
prf() {
	label_hex=$(printf %s "$3" | od -An -tx1 | tr -d ' \n')
	res=$(openssl kdf -keylen "$5" -kdfopt digest:SHA256 -kdfopt "hexsecret:$2" \
		-kdfopt "hexseed:$label_hex$4" TLS1-PRF | tr -d ':\n' | tr 'A-F' 'a-f')
	printf '%s %s %s %s %s\n' "$1" "$2" "$(printf %s "$3" | tr ' ' '_')" "${4:--}" "$res"
}
pre=$(printf '%064x' 0 | sed 's/0/5/g')
cr=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
sr=fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0
ms=$(openssl kdf -keylen 48 -kdfopt digest:SHA256 -kdfopt "hexsecret:$pre" \
	-kdfopt "hexseed:$(printf 'master secret' | od -An -tx1 | tr -d ' \n')$cr$sr" TLS1-PRF | tr -d ':\n' | tr 'A-F' 'a-f')
th=$(printf 'handshake transcript' | openssl dgst -sha256 -r | cut -d' ' -f1)
{
	echo "# name secret label(_ for space) seed(- if empty) output; from OpenSSL TLS1-PRF (gen.sh)"
	echo "# client_random=$cr server_random=$sr"
	prf master "$pre" "master secret" "$cr$sr" 48
	prf keyblock "$ms" "key expansion" "$sr$cr" 40
	prf client-finished "$ms" "client finished" "$th" 12
	prf server-finished "$ms" "server finished" "$th" 12
	prf long "$ms" "test label" "$cr" 100
	prf short-secret "0b" "x" "" 32
} >"$out/prf_sha256.txt"

# mbedtls_session.txt: a full in-memory handshake between an mbedTLS client
# and server with the draft connection ID (session.c). Debian's mbedTLS is
# built without connection IDs, so this step builds Particle's own fork:
# set PARTICLE_MBEDTLS to a checkout of github.com/particle-iot/mbedtls at
# branch particle-2.22.0. Skipped when unset (the committed file stays).
if [ -n "${PARTICLE_MBEDTLS:-}" ]; then
	cp -r "$PARTICLE_MBEDTLS/include" "$PARTICLE_MBEDTLS/library" "$PARTICLE_MBEDTLS/3rdparty" "$tmp/"
	sed -i 's|^//#define MBEDTLS_SSL_DTLS_CONNECTION_ID|#define MBEDTLS_SSL_DTLS_CONNECTION_ID|' "$tmp/include/mbedtls/config.h"
	make -s -C "$tmp/library" -j2 CFLAGS="-O1 -I../include" static
	openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key.pem"
	openssl req -new -x509 -key "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=wick-test -days 1
	cc -O1 -Wall -I "$tmp/include" -o "$tmp/session" session.c \
		"$tmp/library/libmbedtls.a" "$tmp/library/libmbedx509.a" "$tmp/library/libmbedcrypto.a"
	"$tmp/session" "$tmp/key.pem" "$tmp/cert.pem" >"$out/mbedtls_session.txt"
fi
