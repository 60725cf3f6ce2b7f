#!/bin/sh
# Regenerates the test keys of package gateway with openssl. They are test
# keys only: an RSA-2048 server key and three RSA-1024 device keys (the
# third is the "wrong key" of the refusal tests).
set -e
cd "$(dirname "$0")"
openssl genrsa -traditional -out server_key.pem 2048 2>/dev/null
for k in device_a device_b device_wrong; do
	openssl genrsa -traditional -out "${k}_key.pem" 1024 2>/dev/null
done
