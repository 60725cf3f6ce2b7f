// Package firmware runs over-the-air updates for the API and product
// releases (docs/ota.md): it starts one device's update on request, rolls a
// product's released (or locked) firmware out to the devices that run
// another version, at a bounded rate per product, and records every
// device's outcome in the store.
//
// The transfer itself is the gateway's (Flasher); this package decides who
// gets which binary and when, holds the one-update-per-device claim in the
// store (store.DeviceFirmwares.StartDeviceOTA, so that it holds across a
// cluster), and listens on the bus for devices coming online and for the
// spark/flash/status outcomes the gateway publishes.
package firmware
