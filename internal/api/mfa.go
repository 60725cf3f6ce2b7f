package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
)

var (
	errMFANotOn     = errorf(http.StatusBadRequest, "Multifactor authentication is not enabled")
	errNeedPassword = errorf(http.StatusBadRequest, "current_password is required")
)

// handleBeginMFA is GET /v1/user/mfa-enable
// (docs/particle-api.md#mfa-enrolment).
func (s *server) handleBeginMFA(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	en, err := s.auth.BeginMFA(rq.ctx, u)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, en)
}

// handleConfirmMFA is POST /v1/user/mfa-enable: it answers the recovery
// codes, once, as "tokens".
func (s *server) handleConfirmMFA(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	mfaToken, otp := rq.params.str("mfa_token"), strings.TrimSpace(rq.params.str("otp"))
	codes, err := s.auth.ConfirmMFA(rq.ctx, u, mfaToken, otp)
	if err != nil {
		return err
	}
	if rq.params.isTrue("invalidate_tokens") {
		if err := s.revokeOtherTokens(rq, u.ID); err != nil {
			return err
		}
	}
	if codes == nil {
		codes = []string{}
	}
	return writeJSON(rq.w, http.StatusOK, struct {
		Enrolled bool     `json:"enrolled"`
		Tokens   []string `json:"tokens"`
	}{true, codes})
}

// handleDisableMFA is PUT /v1/user/mfa-disable.
func (s *server) handleDisableMFA(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	if !u.MFAEnabled {
		return errMFANotOn
	}
	pw := rq.params.str("current_password")
	if pw == "" {
		return errNeedPassword
	}
	if err := s.auth.DisableMFA(rq.ctx, u, pw); err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// revokeOtherTokens revokes every token of the user but the calling one.
func (s *server) revokeOtherTokens(rq *request, userID string) error {
	toks, err := s.store.TokensByUser(rq.ctx, userID)
	if err != nil {
		return err
	}
	keep := ""
	if rq.principal != nil {
		keep = rq.principal.TokenHash
	}
	revoked := false
	for _, t := range toks {
		if t.Hash == keep {
			continue
		}
		if err := s.auth.RevokeHash(rq.ctx, t.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		revoked = true
	}
	if revoked {
		// By user, not by hash: a notice stays small however many tokens
		// went; the kept token's streams re-check and stay.
		s.accessChanged(rq.ctx, accessNotice{UserID: userID})
	}
	return nil
}
