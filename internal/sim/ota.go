package sim

import (
	"flag"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/protocol/module"
	"github.com/wick-cloud/wick/sdk/device"
)

// OTAConfig is how the simulated devices take firmware updates
// (device.OTAOptions; docs/device-protocol.md, "The device side").
type OTAConfig struct {
	// Mode accepts, refuses (5.03) or drops (disconnects mid-transfer).
	Mode device.OTAMode
	// DropAfter is the chunk count after which the drop mode disconnects;
	// zero means half the binary.
	DropAfter int
	// Delay is a pause before each chunk is handled (a slow device).
	Delay time.Duration
	// LoseEvery loses every n-th chunk the first time it arrives; zero
	// loses none.
	LoseEvery int
	// NoFast refuses fast OTA.
	NoFast bool
	// V3 makes the devices speak OTA v3 (Hello flag 0x80) instead of v1,
	// resuming interrupted transfers.
	V3 bool
	// Version is the product version a device reports after taking an
	// update; zero means the product version in the binary's module
	// suffix, or the version it had when the binary has none.
	Version int
}

// OTAModeFlag is the flag.Value of --ota: accept, refuse or drop.
type OTAModeFlag struct{ P *device.OTAMode }

// String returns the mode's name.
func (f OTAModeFlag) String() string {
	if f.P == nil {
		return device.OTAAccept.String()
	}
	return f.P.String()
}

// Set parses accept, refuse or drop.
func (f OTAModeFlag) Set(s string) error {
	m, err := device.ParseOTAMode(s)
	if err != nil {
		return err
	}
	*f.P = m
	return nil
}

// registerOTA binds the OTA flags of `wick sim` to c.
func (c *Config) registerOTA(fs *flag.FlagSet) {
	fs.IntVar(&c.ProductVersion, "product-version", c.ProductVersion, "product firmware version the devices report (0: none, as non-product firmware)")
	fs.Var(OTAModeFlag{P: &c.OTA.Mode}, "ota", "how devices take firmware updates: accept, refuse (answer 5.03) or drop (disconnect mid-transfer)")
	fs.IntVar(&c.OTA.DropAfter, "ota-drop-after", c.OTA.DropAfter, "chunks after which --ota=drop disconnects (0: half the binary)")
	fs.DurationVar(&c.OTA.Delay, "ota-delay", c.OTA.Delay, "pause before each firmware chunk is handled (a slow device)")
	fs.IntVar(&c.OTA.LoseEvery, "ota-lose", c.OTA.LoseEvery, "lose every n-th firmware chunk the first time it arrives (0: none)")
	fs.BoolVar(&c.OTA.NoFast, "ota-no-fast", c.OTA.NoFast, "refuse fast OTA: the server waits for every chunk's answer")
	fs.BoolVar(&c.OTA.V3, "ota-v3", c.OTA.V3, "speak OTA v3 (Hello flag 0x80, windowed and resumable) instead of v1, as Gen 3 Device OS does")
	fs.IntVar(&c.OTA.Version, "ota-version", c.OTA.Version, "product version reported after an update (0: the one in the binary's module suffix)")
}

// validateOTA checks the OTA flags.
func (c *Config) validateOTA() error {
	switch {
	case c.ProductVersion < 0 || c.ProductVersion >= 0xFFFF:
		return fmt.Errorf("%w: --product-version out of range (0-65534)", ErrConfig)
	case c.OTA.Version < 0 || c.OTA.Version >= 0xFFFF:
		return fmt.Errorf("%w: --ota-version out of range (0-65534)", ErrConfig)
	case c.OTA.DropAfter < 0 || c.OTA.LoseEvery < 0 || c.OTA.Delay < 0:
		return fmt.Errorf("%w: --ota-drop-after, --ota-lose and --ota-delay must not be negative", ErrConfig)
	case c.OTA.LoseEvery == 1:
		return fmt.Errorf("%w: --ota-lose 1 would lose every chunk", ErrConfig)
	}
	return nil
}

// deviceOTA returns the device options of c's OTA settings; taken is
// called for every update a device takes.
func (c *Config) deviceOTA(taken func()) device.OTAOptions {
	return device.OTAOptions{
		Mode:       c.OTA.Mode,
		DropAfter:  c.OTA.DropAfter,
		ChunkDelay: c.OTA.Delay,
		LoseEvery:  c.OTA.LoseEvery,
		NoFast:     c.OTA.NoFast,
		V3:         c.OTA.V3,
		Version:    uint16(c.OTA.Version),
		VersionOf:  binaryVersion,
		OnUpdate:   func([]byte) { taken() },
	}
}

// binaryVersion reads the product version from a module binary's suffix.
func binaryVersion(bin []byte) (uint16, bool) {
	info, err := module.Parse(bin)
	if err != nil || !info.IsProduct() {
		return 0, false
	}
	return info.ProductVersion, true
}
