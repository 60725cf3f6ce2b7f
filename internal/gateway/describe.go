package gateway

import (
	"context"
	"encoding/json"
	"fmt"

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
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.g.store.SetDeviceDescribe(ctx, s.id, d); err != nil {
		return fmt.Errorf("gateway: store describe of %s: %w", s.id, err)
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
