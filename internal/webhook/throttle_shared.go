package webhook

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// sleepNote is the message on P.hookthrottle: a target host that one
// process put to sleep, and until when (Unix milliseconds). The processes
// of a cluster share the sleep, so a failing host is spared by all of them
// (docs/webhooks.md, Throttling); each process still counts the successes
// and errors that decide it from its own deliveries.
type sleepNote struct {
	Host  string `json:"host"`
	Until int64  `json:"until"`
}

// shareSleep tells the other processes that host sleeps, when it does and
// they were not told recently (throttle.share).
func (e *Engine) shareSleep(host string) {
	until, ok := e.thr.share(host, e.cfg.Now())
	if !ok {
		return
	}
	data, err := json.Marshal(sleepNote{Host: host, Until: until.UnixMilli()})
	if err != nil {
		return
	}
	msg := &nats.Msg{Subject: e.sleeps, Data: data, Header: nats.Header{}}
	msg.Header.Set(originHeader, e.origin)
	if err := e.bus.Conn().PublishMsg(msg); err != nil {
		e.log.Warn("webhook: share throttle", "host", host, "err", err)
	}
}

// onSleep applies another process's sleepNote.
func (e *Engine) onSleep(m *nats.Msg) {
	if m.Header.Get(originHeader) == e.origin {
		return
	}
	var n sleepNote
	if json.Unmarshal(m.Data, &n) != nil || n.Host == "" {
		return
	}
	e.thr.sleepUntil(n.Host, time.UnixMilli(n.Until), e.cfg.Now())
}
