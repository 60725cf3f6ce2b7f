package dtls_test

import (
	"fmt"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// Example seals a CoAP message the way a device sends it (a connection-ID
// record) and opens it on the server side, with the replay window.
func Example() {
	key := make([]byte, dtls.KeyLen)
	iv := []byte{1, 2, 3, 4}
	device, _ := dtls.NewCipher(key, iv) // the device's client write key
	server, _ := dtls.NewCipher(key, iv) // the same key, on the server
	cid := []byte{0xc1, 0xd0, 0, 1, 2, 3, 4, 5}

	datagram, _ := device.Seal(nil, dtls.TypeApplicationData, 1, 16, cid, []byte("ping"))

	var window dtls.ReplayWindow
	rec, _, err := dtls.ParseRecord(datagram)
	if err != nil || !window.Check(rec.Header.Seq) {
		return
	}
	content, typ, err := server.Open(nil, &rec)
	if err != nil {
		return
	}
	window.Mark(rec.Header.Seq)
	fmt.Printf("%s %x %s %q %d bytes on the wire\n", rec.Header.Type, rec.Header.CID, typ, content, len(datagram))
	// Output: tls12_cid c1d0000102030405 application_data "ping" 53 bytes on the wire
}
