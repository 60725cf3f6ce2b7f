package storetest

import (
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var challengeTests = []test{
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, want := range []store.Challenge{
			{Hash: "mfa", Purpose: store.ChallengeMFALogin, UserID: "0123456789abcdef01234567",
				Data: []byte(`{"client_id":"cli","scope":""}`), ExpiresAt: at(5 * time.Minute), CreatedAt: at(0)},
			{Hash: "enroll", Purpose: store.ChallengeMFAEnroll, UserID: "u",
				Data: []byte{0, 0xff, '\n', 0}, ExpiresAt: at(time.Hour), CreatedAt: at(time.Second)},
			{Hash: "reset", Purpose: store.ChallengePasswordReset, UserID: "u",
				Data: nil, ExpiresAt: at(24 * time.Hour), CreatedAt: at(0)},
		} {
			c := want
			c.ExpiresAt = base.Add(want.ExpiresAt.Sub(at(0)))
			c.CreatedAt = base.Add(want.CreatedAt.Sub(at(0)))
			must(t, s.CreateChallenge(ctx, &c))
			got, err := s.ChallengeByHash(ctx, want.Hash, want.Purpose)
			must(t, err)
			checkEqual(t, "ChallengeByHash("+want.Purpose+")", got, &want)
		}
		before := time.Now()
		must(t, s.CreateChallenge(ctx, &store.Challenge{Hash: "now", Purpose: store.ChallengeMFALogin, ExpiresAt: at(time.Hour)}))
		got, err := s.ChallengeByHash(ctx, "now", store.ChallengeMFALogin)
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, time.Now())
	}},
	{"PurposeConflictAndDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addChallenge(t, s, "c1", "u", at(time.Hour))
		// The purpose must match too: an mfa_token is no reset token.
		_, err := s.ChallengeByHash(ctx, "c1", store.ChallengePasswordReset)
		wantErr(t, "ChallengeByHash(wrong purpose)", err, store.ErrNotFound)
		_, err = s.ChallengeByHash(ctx, "missing", store.ChallengeMFALogin)
		wantErr(t, "ChallengeByHash(missing)", err, store.ErrNotFound)
		err = s.CreateChallenge(ctx, &store.Challenge{Hash: "c1", Purpose: store.ChallengeMFAEnroll, ExpiresAt: at(time.Hour)})
		wantErr(t, "CreateChallenge(same hash)", err, store.ErrConflict)

		addChallenge(t, s, "c2", "u", at(time.Hour))
		must(t, s.DeleteChallenge(ctx, "c1"))
		// A second consumer finds it already used.
		wantErr(t, "DeleteChallenge(again)", s.DeleteChallenge(ctx, "c1"), store.ErrNotFound)
		checkPresence(t, "challenge", challengeExists, s, map[string]bool{"c1": false, "c2": true})
	}},
}
