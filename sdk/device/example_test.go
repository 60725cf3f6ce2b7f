package device_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
	"github.com/wick-cloud/wick/sdk/device/devicetest"
)

// Example runs a device shaped like the firmware of the Particle app note
// AN032 (an LED function and a sensor) against an in-process test server,
// which then calls the function and reads a variable as the cloud would.
func Example() {
	serverKey, _ := protocol.GenerateServerKey(nil)
	srv, err := devicetest.NewServer(serverKey)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	key, _ := protocol.GenerateDeviceKey(nil)
	const id = "1d002a000547343232363230"
	srv.AddDevice(id, &key.PublicKey) // what POST /v1/provisioning/:id does

	d, err := device.New(device.Config{
		ID:         id,
		PrivateKey: key,
		ServerAddr: srv.Addr,      // e.g. "wick.example.com:5683"
		ServerKey:  srv.PublicKey, // the key `wick keys server` writes
		PlatformID: device.PlatformPhoton,
	})
	if err != nil {
		log.Fatal(err)
	}
	var led atomic.Bool
	d.Function("led", func(ctx context.Context, arg string) int32 {
		switch arg {
		case "on":
			led.Store(true)
			return 1
		case "off":
			led.Store(false)
			return 0
		}
		return -1
	})
	d.Variable("on", led.Load)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go d.Run(ctx)

	// The cloud side: wait for the device, call led("on"), read "on".
	conn, err := srv.WaitConn(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	ret, err := conn.Call(ctx, "led", "on")
	if err != nil {
		log.Fatal(err)
	}
	on, err := conn.Get(ctx, "on", protocol.VariableBool)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("led(on) =", ret, "on =", on)

	// Publishing, as the sensor of AN032 does when its reading changes.
	if err := d.Publish(ctx, "sensorValueEvent", "2048", device.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	e, _ := conn.WaitEvent(ctx, "sensorValueEvent")
	fmt.Printf("event %s = %s\n", e.Name, e.Data)
	// Output:
	// led(on) = 1 on = true
	// event sensorValueEvent = 2048
}
