package netlimit

// Headroom returns the descriptors kept free of listener connections under
// a descriptor limit: for the database, NATS, webhook requests, the event
// store's files and the process itself. It is an eighth of the limit, at
// least 256.
func Headroom(nofile uint64) uint64 { return max(256, nofile/8) }

// Budget returns how many connections the listeners may hold together
// under a descriptor limit: the limit minus Headroom, at least 64.
func Budget(nofile uint64) int {
	h := Headroom(nofile)
	if nofile < h+64 {
		return 64
	}
	return int(min(nofile-h, 1<<30))
}
