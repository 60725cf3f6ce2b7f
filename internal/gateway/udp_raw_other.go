//go:build !linux

package gateway

import "net"

// wrapUDP returns uc: raw datagram system calls are Linux-only
// (udp_raw_linux.go).
func wrapUDP(uc *net.UDPConn) udpAddrPortConn { return uc }
