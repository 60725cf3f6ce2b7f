package bus

import (
	"context"
	"log/slog"
)

// OpenPeer opens a second bus on the same NATS as b, as another Wick
// process would: with the same prefix and replay settings and the given
// node name. For an embedded b it connects in-process to b's server, which
// b keeps owning.
func OpenPeer(ctx context.Context, b *Bus, node string) (*Bus, error) {
	cfg := b.cfg
	cfg.Node = node
	if b.cfg.URL != "" {
		return Open(ctx, cfg, b.log)
	}
	p := newBus(cfg, slog.New(slog.DiscardHandler))
	p.srv = b.srv
	if err := p.connect(ctx); err != nil {
		p.shutdown()
		return nil, err
	}
	return p, nil
}
