package dtls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/netip"
	"time"

	"github.com/wick-cloud/wick/protocol/dtls"
)

// ExampleClientHandshake runs a device's handshake against a server in
// memory, then saves the server's session and restores it as a restarted
// server would, and opens the device's next record with it.
func ExampleClientHandshake() {
	serverKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	deviceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	secret := make([]byte, dtls.CookieSecretLen)
	_, _ = rand.Read(secret)
	cookies, _ := dtls.NewCookies(secret)
	server := &dtls.ServerConfig{Key: serverKey, Cookies: cookies,
		DeviceKey: func(pub *ecdsa.PublicKey) bool { return pub.Equal(&deviceKey.PublicKey) }}
	addr := netip.MustParseAddrPort("192.0.2.1:5684")
	now := time.Now()

	client, err := dtls.NewClientHandshake(&dtls.ClientConfig{Key: deviceKey, ServerKey: &serverKey.PublicKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	var hs *dtls.ServerHandshake
	toServer := client.Start(now)
	for client.Session() == nil {
		var toClient [][]byte
		for _, d := range toServer {
			var out [][]byte
			if hs == nil {
				out, hs, err = server.HandleClientHello(now, addr, d)
			} else {
				out, _, err = hs.HandleDatagram(now, addr, d)
			}
			if err != nil {
				fmt.Println(err)
				return
			}
			toClient = append(toClient, out...)
		}
		toServer = nil
		for _, d := range toClient {
			out, _, err := client.HandleDatagram(now, d)
			if err != nil {
				fmt.Println(err)
				return
			}
			toServer = append(toServer, out...)
		}
	}

	saved, _ := hs.Session().MarshalBinary()
	restored, err := dtls.UnmarshalSession(saved)
	if err != nil {
		fmt.Println(err)
		return
	}
	record, _ := client.Session().Seal(nil, []byte("hello again"))
	rec, _, _ := dtls.ParseRecord(record)
	content, typ, err := restored.Open(nil, &rec)
	fmt.Printf("%s %q %v\n", typ, content, err)
	// Output: application_data "hello again" <nil>
}
