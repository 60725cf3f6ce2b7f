// Package dtls implements the pieces of DTLS 1.2 that Particle's Gen 3
// devices speak, for exactly one profile: ECDHE-ECDSA with AES-128-CCM-8 on
// P-256, raw public keys, and the 8-byte connection ID in the format of the
// IETF draft that Particle's TLS library follows (extension 254, record type
// 25, the draft's additional data), plus Particle's record type 253 for a
// resumed session.
//
// The package is pure: bytes in, structs out. It opens no sockets, keeps no
// clocks and imports nothing of Wick's. The record layer (record*.go) parses
// and writes record headers and the connection-ID inner plaintext; Cipher
// seals and opens records with AES-128-CCM-8; PRF, MasterSecret, KeyBlock and
// VerifyData derive the keys; ReplayWindow drops repeated records. Why it
// exists and what it deliberately leaves out is in docs/dtls.md.
package dtls
