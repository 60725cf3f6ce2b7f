//go:build race

package firmware

// raceEnabled reports a build with the race detector, which slows the
// end-to-end rollout about tenfold: it then simulates fewer devices.
const raceEnabled = true
