package bus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// kindNotice is the subject kind of notices: P.notice.<topic>.
const kindNotice = "notice"

// maxNoticeBytes bounds a notice: notices are small signals, not data.
const maxNoticeBytes = 64 << 10

// PublishNotice sends a small signal (at most 64 KiB) on topic to every
// process on the bus, this one included. Notices are fire-and-forget
// (core NATS): not stored, not replayed, lost by a process that is not
// connected at the time, so a receiver must also have a slower way to
// learn the same fact (docs/bus.md, Notices).
func (b *Bus) PublishNotice(topic string, data []byte) error {
	if b.isClosed() {
		return ErrClosed
	}
	if len(data) > maxNoticeBytes {
		return fmt.Errorf("bus: notice %q: %d bytes, at most %d", topic, len(data), maxNoticeBytes)
	}
	if err := b.nc.Publish(b.noticeSubject(topic), data); err != nil {
		return fmt.Errorf("bus: notice %q: %w", topic, err)
	}
	return nil
}

// SubscribeNotices calls fn with the data of every notice on topic, one
// at a time, from a goroutine of the bus, until stop is called or the
// bus closes. fn must not block for long.
func (b *Bus) SubscribeNotices(topic string, fn func(data []byte)) (stop func(), err error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	ns, err := b.nc.Subscribe(b.noticeSubject(topic), func(m *nats.Msg) { fn(m.Data) })
	if err == nil {
		err = b.nc.Flush()
	}
	if err != nil {
		if ns != nil {
			_ = ns.Unsubscribe()
		}
		return nil, fmt.Errorf("bus: subscribe notices %q: %w", topic, err)
	}
	return func() { _ = ns.Unsubscribe() }, nil
}

func (b *Bus) noticeSubject(topic string) string {
	return b.subj.prefix + "." + kindNotice + "." + EscapeToken(topic)
}
