package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/wick-cloud/wick/sdk/device"
)

// Sensor range and behaviour, after the potentiometer/tank-level sensor of
// Particle app note AN032: a 12-bit analog reading (0-4095) published when
// it moves by more than MIN_DELTA_TO_PUBLISH (5).
const (
	sensorMax      = 4095
	sensorStart    = 2048
	sensorMinDelta = 6  // smallest published change (> 5)
	sensorMaxDelta = 64 // largest change between two readings
)

// Behaviour is the application every simulated device runs: the function
// led and the variables temp, count, label and on. It is safe for
// concurrent use.
type Behaviour struct {
	label  string
	calls  *atomic.Int64 // shared call counter, may be nil
	on     atomic.Bool
	count  atomic.Int32 // calls of led
	sensor atomic.Int32 // 0-4095
}

// NewBehaviour returns the application state of a device labelled label,
// LED off, sensor at mid-scale. calls, if not nil, counts the led calls of
// every device sharing it.
func NewBehaviour(label string, calls *atomic.Int64) *Behaviour {
	b := &Behaviour{label: label, calls: calls}
	b.sensor.Store(sensorStart)
	return b
}

// LED is the cloud function led: "on" switches the LED on and returns 1,
// "off" switches it off and returns 0, anything else returns -1 and
// changes nothing. Every call counts in the variable count.
func (b *Behaviour) LED(_ context.Context, arg string) int32 {
	b.count.Add(1)
	if b.calls != nil {
		b.calls.Add(1)
	}
	switch arg {
	case "on":
		b.on.Store(true)
		return 1
	case "off":
		b.on.Store(false)
		return 0
	}
	return -1
}

// On is the bool variable on: the LED state set by led.
func (b *Behaviour) On() bool { return b.on.Load() }

// Count is the int variable count: how many times led was called.
func (b *Behaviour) Count() int32 { return b.count.Load() }

// Label is the string variable label.
func (b *Behaviour) Label() string { return b.label }

// Temp is the double variable temp, derived from the sensor reading: 21.5
// at mid-scale, about ±5 over the range, rounded to 0.1.
func (b *Behaviour) Temp() float64 {
	t := 21.5 + float64(b.sensor.Load()-sensorStart)/409.5
	return math.Round(t*10) / 10
}

// Sensor returns the current reading, 0-4095.
func (b *Behaviour) Sensor() int32 { return b.sensor.Load() }

// Step moves the reading by a random 6-64 in either direction (reflecting
// at the ends of the range) and returns the new value, which differs from
// the old by more than 5, so every step is worth publishing.
func (b *Behaviour) Step() int32 {
	for {
		old := b.sensor.Load()
		d := sensorMinDelta + rand.Int32N(sensorMaxDelta-sensorMinDelta+1)
		if rand.IntN(2) == 0 {
			d = -d
		}
		v := old + d
		if v < 0 || v > sensorMax {
			v = old - d
		}
		if b.sensor.CompareAndSwap(old, v) {
			return v
		}
	}
}

// SensorData formats a reading as the event data: decimal ASCII, like
// String(mean) in the firmware.
func SensorData(v int32) string { return strconv.Itoa(int(v)) }

// Register installs the function and variables on d.
func (b *Behaviour) Register(d *device.Device) error {
	if err := d.Function("led", b.LED); err != nil {
		return err
	}
	for _, v := range []struct {
		name   string
		getter any
	}{{"temp", b.Temp}, {"count", b.Count}, {"label", b.Label}, {"on", b.On}} {
		if err := d.Variable(v.name, v.getter); err != nil {
			return err
		}
	}
	return nil
}
