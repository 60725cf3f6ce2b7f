package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

var (
	errSignupClosed     = errorf(http.StatusForbidden, "Sign-up is disabled")
	errBadCurrentPass   = errorf(http.StatusBadRequest, "Current password is incorrect")
	errBadPasswordParam = errorf(http.StatusBadRequest, "Password is incorrect")
	errNothingToDo      = errorf(http.StatusBadRequest, "Nothing to do?")
	errUsernameTaken    = errorf(http.StatusBadRequest, "user with the username already exists")
	errBadResetToken    = errorf(http.StatusBadRequest, "Invalid or expired password reset token")
)

// userJSON is the user object of docs/particle-api.md#users. Customers get the
// same shape with their e-mail as username.
type userJSON struct {
	Username            string            `json:"username"`
	SubscriptionIDs     []string          `json:"subscription_ids"`
	AccountInfo         store.AccountInfo `json:"account_info"`
	MFA                 mfaJSON           `json:"mfa"`
	WifiDeviceCount     int               `json:"wifi_device_count"`
	CellularDeviceCount int               `json:"cellular_device_count"`
	TOS                 int               `json:"tos"`
	Memberships         []string          `json:"memberships"`
	SCIMProvisioned     bool              `json:"scim_provisioned"`
	NoPassword          bool              `json:"no_password"`
}

type mfaJSON struct {
	Enabled bool `json:"enabled"`
}

// normalizeEmail trims and lower-cases a username.
func normalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// validEmail reports whether s is a bare e-mail address.
func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}

// checkNewPassword enforces the minimum length.
func (s *server) checkNewPassword(pw string) string {
	if len(pw) < s.cfg.MinPasswordLength {
		return fmt.Sprintf("password must be at least %d characters", s.cfg.MinPasswordLength)
	}
	return ""
}

// mergeAccountInfo overlays the fields present in m onto ai.
func mergeAccountInfo(ai store.AccountInfo, m map[string]any) store.AccountInfo {
	p := params(m)
	if p.has("first_name") {
		ai.FirstName = p.str("first_name")
	}
	if p.has("last_name") {
		ai.LastName = p.str("last_name")
	}
	if p.has("company_name") {
		ai.CompanyName = p.str("company_name")
	}
	if v, isBool := p.boolean("business_account"); isBool {
		ai.BusinessAccount = v
	}
	return ai
}

// handleSignup is POST /v1/users (only with Config.Signup). Errors use
// the list shape that CLI-legacy expects.
func (s *server) handleSignup(rq *request) error {
	if !s.cfg.Signup {
		return errSignupClosed
	}
	username, password := normalizeEmail(rq.params.str("username")), rq.params.str("password")
	if username == "" || password == "" {
		return errorList(http.StatusBadRequest, "username and password required")
	}
	if !validEmail(username) {
		return errorList(http.StatusBadRequest, "username must be an email address")
	}
	if msg := s.checkNewPassword(password); msg != "" {
		return errorList(http.StatusBadRequest, msg)
	}
	hash, err := s.auth.HashPassword(password)
	if err != nil {
		return err
	}
	u := &store.User{
		Username:     username,
		PasswordHash: hash,
		AccountInfo:  mergeAccountInfo(store.AccountInfo{}, rq.params.object("account_info")),
		Verified:     true, // Wick sends no verification e-mail
	}
	if err := s.store.CreateUser(rq.ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorList(http.StatusBadRequest, "user with the username already exists")
		}
		return err
	}
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "api: user signed up", slog.String("username", username))
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleGetUser is GET /v1/user: the user object, or for a customer token
// the customer's minimal view in the same shape.
func (s *server) handleGetUser(rq *request) error {
	view := userJSON{SubscriptionIDs: []string{}, Memberships: []string{}}
	if rq.principal.Kind == store.KindCustomer {
		c, err := s.store.CustomerByID(rq.ctx, rq.principal.CustomerID)
		if errors.Is(err, store.ErrNotFound) {
			return auth.ErrTokenInvalid
		}
		if err != nil {
			return err
		}
		view.Username, view.NoPassword = c.Email, c.PasswordHash == ""
		return writeJSON(rq.w, http.StatusOK, view)
	}
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	view.Username, view.AccountInfo, view.MFA.Enabled = u.Username, u.AccountInfo, u.MFAEnabled
	return writeJSON(rq.w, http.StatusOK, view)
}

// handleUpdateUser is PUT /v1/user: account_info, or username or password
// with current_password; invalidate_tokens revokes the user's other tokens.
func (s *server) handleUpdateUser(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	p := rq.params
	next := *u
	message := ""
	needPassword := false
	if p.has("account_info") {
		next.AccountInfo = mergeAccountInfo(next.AccountInfo, p.object("account_info"))
		message = "User's account info updated."
	}
	if p.has("username") {
		name := normalizeEmail(p.str("username"))
		if !validEmail(name) {
			return errorf(http.StatusBadRequest, "username must be an email address")
		}
		if name != u.Username {
			next.Username, needPassword = name, true
			message = "User's username updated."
		}
	}
	newPassword := ""
	if p.has("password") {
		newPassword = p.str("password")
		if msg := s.checkNewPassword(newPassword); msg != "" {
			return errorf(http.StatusBadRequest, msg)
		}
		needPassword = true
		message = "User's password updated."
	}
	if message == "" {
		return errNothingToDo
	}
	if needPassword {
		cur := p.str("current_password")
		if cur == "" {
			return errNeedPassword
		}
		if err := s.auth.VerifyUserPassword(rq.ctx, u, cur); err != nil {
			if errors.Is(err, auth.ErrBadUserCreds) {
				return errBadCurrentPass
			}
			return err
		}
	}
	if newPassword != "" {
		if next.PasswordHash, err = s.auth.HashPassword(newPassword); err != nil {
			return err
		}
	}
	if err := s.store.UpdateUser(rq.ctx, &next); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errUsernameTaken
		}
		return err
	}
	if next.Username != u.Username {
		if err := s.store.RenameTeamMember(rq.ctx, u.Username, next.Username); err != nil {
			return err
		}
	}
	if p.isTrue("invalidate_tokens") {
		if err := s.revokeOtherTokens(rq, u.ID); err != nil {
			return err
		}
	}
	if p.isTrue("invalidate_tokens") || next.Username != u.Username {
		// Streams re-check their tokens, and team streams the membership
		// under the new name.
		s.accessChanged(rq.ctx, accessNotice{UserID: u.ID})
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "message": message})
}

// handleDeleteUser is DELETE /v1/user {password}: it revokes the user's
// tokens and deletes the account (with its clients and memberships).
func (s *server) handleDeleteUser(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	pw := rq.params.str("password")
	if pw == "" {
		return errorf(http.StatusBadRequest, "password is required")
	}
	if err := s.auth.VerifyUserPassword(rq.ctx, u, pw); err != nil {
		if errors.Is(err, auth.ErrBadUserCreds) {
			return errBadPasswordParam
		}
		return err
	}
	if err := s.auth.RevokeUser(rq.ctx, u.ID); err != nil {
		return err
	}
	hooks, err := s.store.WebhooksByUser(rq.ctx, u.ID) // deleted with the user
	if err != nil {
		return err
	}
	if err := s.store.DeleteUser(rq.ctx, u.ID); err != nil {
		return err
	}
	for _, h := range hooks {
		s.hooksChanged(rq, h.ID)
	}
	s.accessChanged(rq.ctx, accessNotice{UserID: u.ID})
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "api: user deleted", slog.String("username", u.Username))
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "message": "User's account has been deleted."})
}

// handleBeginPasswordReset is POST /v1/user/password-reset. With e-mail
// configured the token is mailed to the address; without, nobody gets it
// and the operator sets passwords with `wick user password` (docs/api.md,
// Password reset). The answer is the same for unknown users.
func (s *server) handleBeginPasswordReset(rq *request) error {
	username := normalizeEmail(rq.params.str("username"))
	if username == "" {
		return errorf(http.StatusBadRequest, "username is required")
	}
	tok, err := s.auth.BeginPasswordReset(rq.ctx, username)
	if err != nil {
		return err
	}
	if tok != "" {
		// The token is a credential: it goes to the mailbox, never to the
		// log (docs/security.md, Logs).
		s.sendResetMail(rq, username, tok)
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "message": "Password reset email sent."})
}

// handleFinishPasswordReset is PUT /v1/user/password-reset {token,
// password}.
func (s *server) handleFinishPasswordReset(rq *request) error {
	tok, pw := strings.TrimSpace(rq.params.str("token")), rq.params.str("password")
	if tok == "" || pw == "" {
		return errorf(http.StatusBadRequest, "token and password are required")
	}
	if msg := s.checkNewPassword(pw); msg != "" {
		return errorf(http.StatusBadRequest, msg)
	}
	// Whose tokens the reset revokes, to tell their open streams.
	var userID string
	if auth.ValidTokenFormat(tok) {
		if ch, err := s.store.ChallengeByHash(rq.ctx, auth.HashToken(tok), store.ChallengePasswordReset); err == nil {
			userID = ch.UserID
		}
	}
	err := s.auth.FinishPasswordReset(rq.ctx, tok, pw)
	if errors.Is(err, store.ErrNotFound) {
		return errBadResetToken
	}
	if err != nil {
		return err
	}
	if userID != "" {
		s.accessChanged(rq.ctx, accessNotice{UserID: userID})
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleVerify is POST /v1/user/verify {token}. Wick creates accounts
// verified and sends no verification e-mail, so there is nothing to check
// beyond the presence of the token.
func (s *server) handleVerify(rq *request) error {
	if strings.TrimSpace(rq.params.str("token")) == "" {
		return errorf(http.StatusBadRequest, "token is required")
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleIdentify is GET /v1/user/identify.
func (s *server) handleIdentify(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]string{"id": u.ID, "email": u.Username})
}

// handleListOrgs is GET /v1/orgs: Wick has no organizations.
func (s *server) handleListOrgs(rq *request) error {
	return writeJSON(rq.w, http.StatusOK, map[string]any{"organizations": []any{}})
}

// handleOrgNotFound answers the organization routes: no organization
// exists.
func (s *server) handleOrgNotFound(rq *request) error {
	return errorf(http.StatusNotFound, "Organization not found")
}
