#!/bin/sh
# capture.sh records a real DTLS 1.2 ECDHE-ECDSA-AES128-CCM8 handshake on P-256 between
# OpenSSL's s_server and s_client on 127.0.0.1 (an implementation independent
# of Wick) and writes every handshake message OpenSSL printed with -msg to
# openssl-handshake.txt, plus both self-signed P-256 certificates and the
# master secret (openssl-keylog.txt, NSS key log format), so
# handshake_golden_test.go can decode the exact bytes. Run it from this
# directory; it needs only the openssl command.
set -eu
dir=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$dir"' EXIT
port=${PORT:-48443}
for who in server client; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$who.key" -out "$dir/$who.pem" -days 3650 \
		-subj "/CN=wick-$who" 2>/dev/null
done
openssl s_server -dtls1_2 -accept 127.0.0.1:$port -cipher ECDHE-ECDSA-AES128-CCM8 -groups P-256 \
	-cert "$dir/server.pem" -key "$dir/server.key" -Verify 1 -CAfile "$dir/client.pem" \
	-msg -naccept 1 -quiet >"$dir/server.log" 2>&1 &
srv=$!
sleep 1
echo hello | openssl s_client -dtls1_2 -connect 127.0.0.1:$port -cipher ECDHE-ECDSA-AES128-CCM8 -groups P-256 \
	-cert "$dir/client.pem" -key "$dir/client.key" -keylogfile "$dir/keylog.txt" -msg -quiet >"$dir/client.log" 2>&1 || true
sleep 1
cp "$dir/client.log" openssl-handshake.txt
cp "$dir/server.pem" openssl-server.pem
cp "$dir/client.pem" openssl-client.pem
cp "$dir/keylog.txt" openssl-keylog.txt
