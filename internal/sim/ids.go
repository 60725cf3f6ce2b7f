package sim

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// idLen is the length of a device ID in hex characters.
const idLen = 24

// DeviceID returns the n-th simulated device ID: prefix (hex, lowered)
// followed by n in hex, zero-padded to 24 characters. With prefix "51",
// n = 1 gives "510000000000000000000001". It fails when the prefix is not
// hex, n is negative, or n does not fit in the characters left.
func DeviceID(prefix string, n int) (string, error) {
	prefix = strings.ToLower(prefix)
	if len(prefix) >= idLen {
		return "", fmt.Errorf("sim: id prefix %q: at most %d hex characters", prefix, idLen-1)
	}
	if _, err := hex.DecodeString(prefix + strings.Repeat("0", len(prefix)%2)); err != nil {
		return "", fmt.Errorf("sim: id prefix %q is not hex", prefix)
	}
	if n < 0 {
		return "", fmt.Errorf("sim: device number %d is negative", n)
	}
	digits := idLen - len(prefix)
	c := strconv.FormatUint(uint64(n), 16)
	if len(c) > digits {
		return "", fmt.Errorf("sim: device number %d does not fit in %d hex digits after prefix %q", n, digits, prefix)
	}
	return prefix + strings.Repeat("0", digits-len(c)) + c, nil
}
