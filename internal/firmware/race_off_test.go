//go:build !race

package firmware

// raceEnabled reports a build with the race detector.
const raceEnabled = false
