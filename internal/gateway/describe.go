package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// applyDescribe parses a describe payload and stores the parts it holds:
// the application part (functions and typed variables) is also kept in the
// session for function calls and variable decoding; the system part sets
// the device's status and yields the app hash
// (docs/particle-protocol.md#events-the-cloud-emits).
func (s *session) applyDescribe(flags protocol.DescribeFlags, payload []byte) error {
	desc, err := protocol.ParseDescription(flags, payload)
	if err != nil {
		return fmt.Errorf("gateway: device %s: describe %s: %w", s.id, flags, err)
	}
	var (
		d   store.Describe
		got protocol.DescribeFlags
		app *appInfo
	)
	if a := desc.App; a != nil {
		got |= protocol.DescribeApplication
		d.Parts |= store.DescribeApplication
		app = &appInfo{}
		if len(a.Functions) > 0 {
			app.functions = append([]string(nil), a.Functions...)
			d.Functions = app.functions
		}
		for _, v := range a.Variables {
			if knownVariableType(v.Type) {
				app.variables = append(app.variables, v)
				if d.Variables == nil {
					d.Variables = make(map[string]string, len(a.Variables))
				}
				d.Variables[v.Name] = v.Type.String()
			}
		}
	}
	safeMode := false
	if sys := desc.System; sys != nil {
		got |= protocol.DescribeSystem
		d.Parts |= store.DescribeSystem
		safeMode = isSafeMode(sys)
		if safeMode {
			d.Status = store.DeviceStatusSafeMode
		}
	}
	s.mu.Lock()
	s.gotParts |= got
	if app != nil {
		s.app = app
	}
	if s.descTimer != nil && s.gotParts&(protocol.DescribeSystem|protocol.DescribeApplication) == protocol.DescribeSystem|protocol.DescribeApplication {
		s.descTimer.Stop() // both parts posted: nothing left to ask for
		s.descTimer = nil
	}
	o, prodVer := s.own, s.prodVer
	s.mu.Unlock()
	if d.Parts == 0 {
		return nil // metrics only
	}
	seq := s.descN.Add(1)
	for _, p := range describeParts(d.Parts) {
		s.descSeq[p].Store(seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.g.store.SetDeviceDescribe(ctx, s.id, d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("gateway: store describe of %s: %w", s.id, err)
		}
		// A store that is slow or down (a reconnect storm) must not leave
		// the device listed without its functions for the whole session:
		// the session already has them, and the write is retried.
		s.g.log.Warn("gateway: store describe, retrying", "device", s.id, "err", err)
		go s.retryDescribe(d, seq)
	}
	if app != nil {
		s.admitted() // the start is over: calls find the functions
	}
	if sys := desc.System; sys != nil {
		if safeMode {
			data, _ := json.Marshal(sys)
			s.g.publish(bus.Event{Name: eventSafeMode, Data: string(data), DeviceID: s.id}, o, prodVer)
		}
		if um, ok := sys.UserModule(); ok && um.Hash != "" {
			s.mu.Lock()
			changed := s.appHash != um.Hash
			s.appHash = um.Hash
			s.mu.Unlock()
			if changed {
				s.g.publish(bus.Event{Name: eventAppHash, Data: um.Hash, DeviceID: s.id}, o, prodVer)
			}
		}
	}
	return nil
}

// Describe parts as indexes of session.descSeq.
const (
	descApp = iota
	descSys
)

// describeParts lists the descSeq indexes of the parts in ps.
func describeParts(ps store.DescribePart) []int {
	var out []int
	if ps&store.DescribeApplication != 0 {
		out = append(out, descApp)
	}
	if ps&store.DescribeSystem != 0 {
		out = append(out, descSys)
	}
	return out
}

// Back-off of retried describe writes.
const (
	describeRetryMin = 250 * time.Millisecond
	describeRetryMax = 10 * time.Second
)

// retryDescribe writes d, whose first write (number seq) failed, until it
// is stored, the session is over, or a later describe of the same parts
// replaced it (that one is written, or retried, on its own). A part that a
// later describe replaced is left out, so an old retry never overwrites a
// newer description.
func (s *session) retryDescribe(d store.Describe, seq uint64) {
	wait := describeRetryMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
		var left store.DescribePart
		if s.descSeq[descApp].Load() == seq {
			left |= d.Parts & store.DescribeApplication
		}
		if s.descSeq[descSys].Load() == seq {
			left |= d.Parts & store.DescribeSystem
		}
		if left == 0 {
			return
		}
		d.Parts = left
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := s.g.store.SetDeviceDescribe(ctx, s.id, d)
		cancel()
		if err == nil {
			s.g.log.Info("gateway: stored describe after retrying", "device", s.id)
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		wait = min(2*wait, describeRetryMax)
	}
}

// isSafeMode reports whether a system describe shows a module in the main
// store whose validity checks did not all pass (vc != vv): the firmware then
// runs in safe mode, its user application disabled. This is a heuristic;
// the device also says so itself with spark/device/safemode.
func isSafeMode(sys *protocol.SystemDescribe) bool {
	for _, m := range sys.Modules {
		if (m.Store == "" || m.Store == "m") && m.Checked != m.Passed {
			return true
		}
	}
	return false
}

func knownVariableType(t protocol.VariableType) bool {
	switch t {
	case protocol.VariableBool, protocol.VariableInt32, protocol.VariableString, protocol.VariableDouble:
		return true
	}
	return false
}
