package sqlstore

// The batched saves of Gen 3 sessions (store.DTLSSessionBatches): a
// gateway that shuts down with a hundred thousand sessions saves them in
// batches of thousands, one transaction each.
//
// On PostgreSQL a batch is written with two statements per round (see
// saveDTLSSessionsBulk): the conditional replaces of saved sessions in one
// UPDATE and the inserts of new ones in one INSERT, the batch joined as
// arrays (unnest), each statement returning the connection IDs it wrote;
// one statement per session cost a round trip each (BenchmarkDTLSSessionSaves:
// 180-225 µs a session against 63-76 µs in bulk, at load 9-10).
//
// On SQLite, in process, a statement costs no round trip, and one prepared
// statement per session in the batch's transaction (saveDTLSSessionsEach)
// is the fastest form measured: 9-16 µs a session at load 8-10, against
// 20-26 µs for the same statements as one UPDATE ... FROM a VALUES list of
// bound parameters and 26-40 µs FROM json_each of a JSON array of
// hex-encoded sessions (building and taking apart the batch cost more than
// the statements it saved).

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// The bulk statements. Each keeps the conditions of its single-session
// form (replaceDTLSSessionState, insertNewDTLSSession with
// findDeviceToSave): a replace only where the stored state is still the
// old one (and the device the same), an insert only of a free connection
// ID and for a device that exists; on PostgreSQL the devices found are
// share-locked, in ID order, so that DeleteDevice, which deletes the device
// before its sessions, cannot leave a session behind.
const (
	pgReplaceDTLSSessions = `UPDATE dtls_sessions SET state = v.state, addr = v.addr, updated_at = v.t
		FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bytea[])
			AS v(cid, dev, state, addr, t, old)
		WHERE dtls_sessions.cid = v.cid AND dtls_sessions.device_id = v.dev AND dtls_sessions.state = v.old
		RETURNING dtls_sessions.cid`
	pgInsertDTLSSessions = `INSERT INTO dtls_sessions (cid, device_id, state, addr, updated_at)
		SELECT v.cid, v.dev, v.state, v.addr, v.t
		FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::bigint[]) AS v(cid, dev, state, addr, t)
		JOIN (SELECT id FROM devices WHERE id = ANY($2::text[]) ORDER BY id FOR SHARE) AS d ON d.id = v.dev
		ON CONFLICT (cid) DO NOTHING
		RETURNING cid`
)

// SaveDTLSSessions claims each session of ss from old[i] in one
// transaction (store.DTLSSessionBatches), as ClaimDTLSSession does; a
// session whose stored state is not old[i] (or, new, whose CID is taken
// or device absent) is left out and reported unsaved.
//
// Sessions of one CID are claimed in their order, each from what the
// earlier ones left.
func (db *DB) SaveDTLSSessions(ctx context.Context, ss []store.DTLSSession, old [][]byte) ([]bool, error) {
	if len(old) != len(ss) {
		return nil, fmt.Errorf("sqlstore: save DTLS sessions: %d sessions, %d old states", len(ss), len(old))
	}
	for _, s := range ss {
		if len(s.CID) == 0 {
			return nil, fmt.Errorf("sqlstore: save DTLS sessions: empty connection ID of device %q", s.DeviceID)
		}
	}
	if len(ss) == 0 {
		return []bool{}, nil
	}
	var (
		saved []bool
		err   error
	)
	if db.dialect == dialectPostgres {
		saved, err = db.saveDTLSSessionsBulk(ctx, ss, old)
	} else {
		saved, err = db.saveDTLSSessionsEach(ctx, ss, old)
	}
	if err != nil {
		return nil, wrap(err, "save %d DTLS sessions", len(ss))
	}
	return saved, nil
}

// saveDTLSSessionsBulk is SaveDTLSSessions on PostgreSQL, a statement per
// kind of write. The batch is written in rounds of distinct connection
// IDs, each round one replace statement and one insert statement: a CID's
// first session in the first round, its second (if the batch holds one)
// in the next, and so on. The outcome is therefore the same as claiming
// the sessions one by one in order. A gateway's batch holds each CID once:
// one round.
func (db *DB) saveDTLSSessionsBulk(ctx context.Context, ss []store.DTLSSession, old [][]byte) ([]bool, error) {
	saved := make([]bool, len(ss))
	rounds := dtlsSaveRounds(ss)
	b := dtlsBatch{ss: ss, old: old, atMS: toMS(now())}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, round := range rounds {
			var upd, ins []int
			for _, i := range round {
				if old[i] != nil {
					upd = append(upd, i)
				} else {
					ins = append(ins, i)
				}
			}
			for _, part := range []struct {
				idx    []int
				update bool
			}{{upd, true}, {ins, false}} {
				if len(part.idx) == 0 {
					continue
				}
				cids, err := db.saveDTLSRound(ctx, tx, &b, part.idx, part.update)
				if err != nil {
					return err
				}
				// The CIDs of a round are distinct: each names one session.
				byCID := make(map[string]int, len(part.idx))
				for _, i := range part.idx {
					byCID[string(ss[i].CID)] = i
				}
				for _, c := range cids {
					if i, ok := byCID[c]; ok {
						saved[i] = true
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// dtlsBatch is a batch of sessions being saved.
type dtlsBatch struct {
	ss   []store.DTLSSession
	old  [][]byte
	atMS int64 // the time of a session whose UpdatedAt is zero
}

// session returns the values session i is saved with.
func (b *dtlsBatch) session(i int) (state []byte, atMS int64) {
	s := b.ss[i]
	state, atMS = s.State, b.atMS
	if state == nil {
		state = []byte{}
	}
	if !s.UpdatedAt.IsZero() {
		atMS = toMS(s.UpdatedAt)
	}
	return state, atMS
}

// dtlsSaveRounds splits the indexes of ss into rounds in which each CID
// appears once: the k-th session of a CID goes in round k, in the order of
// ss.
func dtlsSaveRounds(ss []store.DTLSSession) [][]int {
	seen := make(map[string]int, len(ss))
	var rounds [][]int
	for i, s := range ss {
		k := seen[string(s.CID)]
		seen[string(s.CID)] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, make([]int, 0, len(ss)))
		}
		rounds[k] = append(rounds[k], i)
	}
	return rounds
}

// saveDTLSRound writes the sessions idx of b (distinct CIDs; all replaces,
// or all inserts) in one statement and returns the CIDs it wrote.
func (db *DB) saveDTLSRound(ctx context.Context, tx *sql.Tx, b *dtlsBatch, idx []int, update bool) ([]string, error) {
	// Replaces in CID order (inserts lock their devices in ID order), so
	// that two nodes' overlapping batches lock rows in one order.
	if update {
		idx = slices.Clone(idx)
		slices.SortFunc(idx, func(x, y int) int { return bytes.Compare(b.ss[x].CID, b.ss[y].CID) })
	}
	n := len(idx)
	cids, devs, states, addrs, times := make([][]byte, n), make([]string, n), make([][]byte, n), make([]string, n), make([]int64, n)
	for k, i := range idx {
		s := b.ss[i]
		cids[k], devs[k], addrs[k] = s.CID, s.DeviceID, s.Addr
		states[k], times[k] = b.session(i)
	}
	if !update {
		return db.collectStrings(ctx, tx, pgInsertDTLSSessions, cids, devs, states, addrs, times)
	}
	olds := make([][]byte, n)
	for k, i := range idx {
		olds[k] = b.old[i]
	}
	return db.collectStrings(ctx, tx, pgReplaceDTLSSessions, cids, devs, states, addrs, times, olds)
}

// prepareClaims prepares claimOne's statements in tx.
func (db *DB) prepareClaims(ctx context.Context, tx *sql.Tx) (find, ins, upd *sql.Stmt, err error) {
	if find, err = tx.PrepareContext(ctx, db.rebind(findDeviceToSave(db))); err != nil {
		return nil, nil, nil, err
	}
	if ins, err = tx.PrepareContext(ctx, db.rebind(insertNewDTLSSession)); err != nil {
		closeStmts(find)
		return nil, nil, nil, err
	}
	if upd, err = tx.PrepareContext(ctx, db.rebind(replaceDTLSSessionState)); err != nil {
		closeStmts(find, ins)
		return nil, nil, nil, err
	}
	return find, ins, upd, nil
}

// closeStmts closes the statements that are not nil.
func closeStmts(sts ...*sql.Stmt) {
	for _, st := range sts {
		if st != nil {
			st.Close()
		}
	}
}

// claimOne writes s as ClaimDTLSSession does (an absent device is not an
// error: s is not saved) with the statements of prepareClaims, at0 its
// time when s.UpdatedAt is zero, and reports whether it did.
func (db *DB) claimOne(ctx context.Context, find, ins, upd *sql.Stmt, s store.DTLSSession, old []byte, at0 time.Time) (bool, error) {
	state := s.State
	if state == nil {
		state = []byte{}
	}
	at := s.UpdatedAt
	if at.IsZero() {
		at = at0
	}
	var res sql.Result
	if old != nil {
		var err error
		if res, err = upd.ExecContext(ctx, state, s.Addr, toMS(at), s.CID, s.DeviceID, old); err != nil {
			return false, err
		}
	} else {
		var one int
		err := find.QueryRowContext(ctx, s.DeviceID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if res, err = ins.ExecContext(ctx, s.CID, s.DeviceID, state, s.Addr, toMS(at)); err != nil {
			return false, err
		}
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// saveDTLSSessionsEach is SaveDTLSSessions with one statement per session
// (two for a new one), in order, in one transaction: on SQLite.
func (db *DB) saveDTLSSessionsEach(ctx context.Context, ss []store.DTLSSession, old [][]byte) ([]bool, error) {
	saved := make([]bool, len(ss))
	at0 := now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		find, ins, upd, err := db.prepareClaims(ctx, tx)
		if err != nil {
			return err
		}
		defer closeStmts(find, ins, upd)
		for i, s := range ss {
			if saved[i], err = db.claimOne(ctx, find, ins, upd, s, old[i], at0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}
