#!/usr/bin/env bash
# gen.sh regenerates the golden files in this directory using only the openssl
# command line and xxd, never the Go code under test, so that a bug shared by
# Wick's server and Wick's device SDK cannot hide in the goldens.
#
# Keys are created once and then kept (delete them to rotate). The CoAP
# plaintexts below are assembled by hand from docs/particle-protocol.md (the
# CoAP message layer); every frame is encrypted by `openssl enc -aes-128-cbc`
# with the IV chained as docs/particle-protocol.md#frames says: next IV = first
# ciphertext block of the previous frame in the same direction.
#
# Usage: cd protocol/testdata && ./gen.sh
set -euo pipefail
cd "$(dirname "$0")"

hex() { xxd -p | tr -d '\n'; }
unhex() { xxd -r -p; }
asc() { printf '%s' "$1" | hex; }
# ff N: N bytes of 0xFF fill (refuses a negative count instead of streaming forever).
ff() { [ "$1" -ge 0 ] || { echo "gen.sh: negative fill $1" >&2; exit 1; }; head -c "$1" /dev/zero | tr '\0' '\377'; }

# ----------------------------------------------------- keys (docs/particle-protocol.md#key-types)
[ -f server_key.pem ] || openssl genrsa -traditional -out server_key.pem 2048 2>/dev/null
[ -f server2_key.pem ] || openssl genrsa -traditional -out server2_key.pem 2048 2>/dev/null
[ -f device_key.pem ] || openssl genrsa -traditional -out device_key.pem 1024 2>/dev/null
[ -f device2_key.pem ] || openssl genrsa -traditional -out device2_key.pem 1024 2>/dev/null
[ -f device_ec_key.pem ] || openssl ecparam -name prime256v1 -genkey -out device_ec_key.pem
openssl rsa -in server_key.pem -pubout -out server_key.pub.pem 2>/dev/null
openssl rsa -in server_key.pem -pubout -outform DER -out server_key.pub.der 2>/dev/null
openssl rsa -in server_key.pem -RSAPublicKey_out -out server_key.rsapub.pem 2>/dev/null
openssl rsa -in server_key.pem -traditional -outform DER -out server_key.der 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in server_key.pem -out server_key.pk8.pem
openssl rsa -in device_key.pem -traditional -outform DER -out device_key.der 2>/dev/null
openssl rsa -in device_key.pem -pubout -out device_key.pub.pem 2>/dev/null
openssl rsa -in device_key.pem -pubout -outform DER -out device_key.pub.der 2>/dev/null
openssl rsa -in device_key.pem -RSAPublicKey_out -outform DER -out device_key.rsapub.der 2>/dev/null
openssl rsa -in device2_key.pem -pubout -out device2_key.pub.pem 2>/dev/null
openssl rsa -in server2_key.pem -pubout -out server2_key.pub.pem 2>/dev/null
openssl ec -in device_ec_key.pem -pubout -out device_ec_key.pub.pem 2>/dev/null
openssl ec -in device_ec_key.pem -pubout -outform DER -out device_ec_key.pub.der 2>/dev/null
# The device's private-key slot: PKCS#1 DER followed by 0xFF fill to 612 bytes.
cp device_key.der device_key.slot
ff $((612 - $(stat -c %s device_key.der))) >> device_key.slot

# -------------------------------- server key blob (docs/particle-protocol.md#the-server-key-file)
# TCP blob: key DER at 0, 0xFF fill, address TLV at 384, port at 450, 512 bytes.
{
  cat server_key.pub.der
  ff $((384 - $(stat -c %s server_key.pub.der)))
  printf '01%02x' 16 | unhex; printf 'cloud.example.io'      # type 1 (domain), len 16
  ff $((450 - 384 - 18))
  printf '1633' | unhex                                       # port 5683
  ff $((512 - 452))
} > server_key_blob_tcp.bin
# Same key, IPv4 192.168.1.20, default port (0xFFFF).
{
  cat server_key.pub.der
  ff $((384 - $(stat -c %s server_key.pub.der)))
  printf '0004c0a80114' | unhex
  ff $((512 - 390))
} > server_key_blob_tcp_ip.bin
# UDP blob: EC P-256 SPKI at 0, address TLV at 192, port at 258, 320 bytes.
{
  cat device_ec_key.pub.der
  ff $((192 - $(stat -c %s device_ec_key.pub.der)))
  printf '0004' | unhex; printf '0a000001' | unhex            # 10.0.0.1
  ff $((258 - 198))
  printf '1634' | unhex                                       # port 5684
  ff $((320 - 260))
} > server_key_blob_udp.bin

# -------------------------------------------- handshake (docs/particle-protocol.md#tcp-handshake)
NONCE=a1f3c9e2b4d6087f19e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0a
BADNONCE=00f3c9e2b4d6087f19e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0a
DEVID=0123456789abcdef01234567
KEY=2b7e151628aed2a6abf7158809cf4f3c
IV=000102030405060708090a0b0c0d0e0f
SALT=3a9c17e4d2b00f61
CRED=$KEY$IV$SALT
SPKI=$(hex < device_key.pub.der)

rsa_enc() { # rsa_enc PUBKEY_PEM HEX -> hex ciphertext (PKCS#1 v1.5 type 2)
  printf '%s' "$2" | unhex | openssl pkeyutl -encrypt -pubin -inkey "$1" -pkeyopt rsa_padding_mode:pkcs1 | hex
}
HELLO_PLAIN=$NONCE$DEVID$SPKI
HELLO=$(rsa_enc server_key.pub.pem "$HELLO_PLAIN")
HELLO52=$(rsa_enc server_key.pub.pem "$NONCE$DEVID")
HELLO_BADNONCE=$(rsa_enc server_key.pub.pem "$BADNONCE$DEVID$SPKI")
HELLO_SHORT=$(rsa_enc server_key.pub.pem "$NONCE$(printf '%s' $DEVID | cut -c1-20)")
HELLO_WRONGKEY=$(rsa_enc server2_key.pub.pem "$HELLO_PLAIN")

SESSION_CT=$(rsa_enc device_key.pub.pem "$CRED")
# h = HMAC-SHA1(key = cred, msg = ct); sig = raw PKCS#1 v1.5 type 1 over h (no DigestInfo).
HMAC=$(printf '%s' "$SESSION_CT" | unhex | openssl dgst -sha1 -mac HMAC -macopt hexkey:$CRED -binary | hex)
raw_sign() { printf '%s' "$2" | unhex | openssl pkeyutl -sign -inkey "$1" -pkeyopt rsa_padding_mode:pkcs1 | hex; }
SIG=$(raw_sign server_key.pem "$HMAC")
SIG_WRONG=$(raw_sign server2_key.pem "$HMAC")
SESSION_CT_WRONGDEV=$(rsa_enc device2_key.pub.pem "$CRED")
HMAC_WRONGDEV=$(printf '%s' "$SESSION_CT_WRONGDEV" | unhex | openssl dgst -sha1 -mac HMAC -macopt hexkey:$CRED -binary | hex)
SIG_WRONGDEV=$(raw_sign server_key.pem "$HMAC_WRONGDEV")
# Verify the raw signature round-trips with openssl itself.
printf '%s' "$SIG" | unhex | openssl pkeyutl -verifyrecover -pubin -inkey server_key.pub.pem -pkeyopt rsa_padding_mode:pkcs1 | hex | grep -qx "$HMAC"

{
  echo "# handshake.golden: generated by gen.sh with openssl; do not edit."
  echo "# RSA PKCS#1 v1.5 encryption is randomised, so the ciphertexts are only decrypted by the tests;"
  echo "# the raw PKCS#1 v1.5 signature is deterministic and is compared byte for byte."
  echo "nonce $NONCE"
  echo "device_id $DEVID"
  echo "device_hello_plain $HELLO_PLAIN"
  echo "device_hello $HELLO"
  echo "device_hello_52 $HELLO52"
  echo "device_hello_bad_nonce $HELLO_BADNONCE"
  echo "device_hello_short $HELLO_SHORT"
  echo "device_hello_wrong_server_key $HELLO_WRONGKEY"
  echo "cred $CRED"
  echo "session_key $KEY"
  echo "session_iv $IV"
  echo "session_salt $SALT"
  echo "session_ct $SESSION_CT"
  echo "session_hmac $HMAC"
  echo "session_sig $SIG"
  echo "session_reply $SESSION_CT$SIG"
  echo "session_reply_wrong_server $SESSION_CT$SIG_WRONG"
  echo "session_reply_wrong_device $SESSION_CT_WRONGDEV$SIG_WRONGDEV"
} > handshake.golden

# ---------------------------------------------------- frames (docs/particle-protocol.md#frames)
# aes_frame IVHEX PLAINHEX -> frame hex: len(2, BE) || AES-128-CBC(PKCS#7)
aes_frame() {
  local ct
  ct=$(printf '%s' "$2" | unhex | openssl enc -aes-128-cbc -K $KEY -iv "$1" | hex)
  printf '%04x%s' $(( ${#ct} / 2 )) "$ct"
}
aes_nopad_frame() {
  local ct
  ct=$(printf '%s' "$2" | unhex | openssl enc -aes-128-cbc -nopad -K "$3" -iv "$1" | hex)
  printf '%04x%s' $(( ${#ct} / 2 )) "$ct"
}

SYS_JSON='{"p":3,"m":[{"s":1048576,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":3302,"d":[]},{"s":131072,"l":"m","vc":30,"vv":30,"u":"2f9a1c53b0e4d8a77b61c2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081","f":"u","n":"1","v":6,"d":[{"f":"s","n":"1","v":3302}]}]}'
APP_JSON='{"f":["led"],"v":{"temp":9,"count":2,"label":4,"on":1}}'
NAME_UPD=particle/device/updates/enabled   # 31 bytes -> 0d 12
NAME_DEV=spark/device/name                 # 17 bytes -> 0d 04

# Device -> server. Message ids start at LE16(salt[0:2]) + 1 = 0x9c3a + 1
# (docs/particle-protocol.md#message-ids-and-tokens).
D2S=(
  "hello                5002 9c3b b168 ff 0003 ffff 0036 0003 00 00 0ce6 03c0 00019000 0200"
  "describe_post_system_full 4102 9c3c 7a b164 4101 ff $(asc "$SYS_JSON")"
  "describe_post_app    4102 9c3d 7b b164 4102 ff $(asc "$APP_JSON")"
  "time_request         4101 9c3e 7c b174"
  "event_private        5002 9c3f b145 0d12 $(asc $NAME_UPD) ff $(asc true)"
  "subscribe_my_devices 4001 9c40 b165 05 $(asc spark) 41 75"
  "event_public_ttl     5002 9c41 b165 04 $(asc temp) 33 000e10 ff $(asc 21.5)"
  "ack_function         6000 4001"
  "function_result      5144 9c42 01 ff 00000001"
  "ack_variable         6000 4002"
  "variable_double      5145 9c43 02 ff 0000000000803540"
  "signal_ack           6144 4003 03"
  "variable_string      5145 9c44 05 ff $(asc 'hello wick')"
  "ping                 4000 9c45"
  "goodbye              5002 9c46 b178 d0ea ff 05 02 ac02"
)
# Server -> device. Server message ids start anywhere (here 0x4000), tokens are 1 byte.
S2D=(
  "server_hello         5002 4000 b168"
  "ack_describe_system  6000 9c3c"
  "ack_describe_app     6000 9c3d"
  "time_response        6145 9c3e 7c ff 6553f100"
  "ack_subscribe        6000 9c40"
  "function_call        4102 4001 01 b166 03 $(asc led) 42 $(asc on)"
  "variable_request     4101 4002 02 b176 04 $(asc temp)"
  "signal_start         4103 4003 03 b173 41 01"
  "describe_request_app 4101 4004 04 b164 41 02"
  "event_to_device      5002 4005 b145 0d04 $(asc $NAME_DEV) ff $(asc wick-sim-1)"
  "variable_request_str 4101 4007 05 b176 05 $(asc label)"
  "ack_ping             6000 9c45"
  "server_ping          4000 4006"
)

transcript() { # transcript PREFIX ARRAY...
  local prefix=$1; shift
  local iv=$IV entry name plain frame
  for entry in "$@"; do
    name=${entry%% *}
    plain=$(printf '%s' "${entry#* }" | tr -d ' ')
    frame=$(aes_frame "$iv" "$plain")
    echo "$prefix $name $plain $frame"
    iv=${frame:4:32}   # first ciphertext block (after the 2-byte length)
  done
}
{
  echo "# frames.golden: generated by gen.sh with openssl enc -aes-128-cbc; do not edit."
  echo "# Lines: key/iv, then '<direction> <name> <coap plaintext hex> <frame hex>' in stream order."
  echo "key $KEY"
  echo "iv $IV"
  transcript d2s "${D2S[@]}"
  transcript s2d "${S2D[@]}"
} > frames.golden

# Frames that must be rejected, all encrypted with the session IV.
WRONGKEY=000102030405060708090a0b0c0d0e0f
{
  echo "# badframes.golden: generated by gen.sh with openssl enc -nopad; do not edit."
  echo "# '<name> <frame hex>': the first frame read with key/iv of frames.golden must fail."
  echo "pad_zero $(aes_nopad_frame $IV 40001234000000000000000000000000 $KEY)"
  echo "pad_too_big $(aes_nopad_frame $IV 40001234000000000000000000000011 $KEY)"
  echo "pad_inconsistent $(aes_nopad_frame $IV 40001234000000000000000004030404 $KEY)"
  echo "pad_block_of_zero_pad $(aes_nopad_frame $IV 4000123400000000000000000000000000000000000000000000000000000000 $KEY)"
} > badframes.golden
# A full, correctly padded frame encrypted with a different key (the "wrong key" case).
echo "wrong_key $(printf '%s' 40001234 | unhex | openssl enc -aes-128-cbc -K $WRONGKEY -iv $IV | hex | awk '{printf "%04x%s", length($0)/2, $0}')" >> badframes.golden
echo "ok"
