package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

var (
	errTeamUsername  = errorf(http.StatusBadRequest, "username must be an email address")
	errTeamRole      = errorf(http.StatusBadRequest, "role must be Administrator, Developer, Support or View-only")
	errTeamExists    = errorf(http.StatusBadRequest, "User is already a team member")
	errTeamNotMember = errorf(http.StatusNotFound, "User is not a team member")
	errTeamOwner     = errorf(http.StatusBadRequest, "The product owner cannot be removed from the team")
	errAPIUserName   = errorf(http.StatusBadRequest, "friendly_name is required")
	errAPIUserScopes = errorf(http.StatusBadRequest, "scopes are required")
	errAPIUserScope  = errorf(http.StatusBadRequest, "Invalid scope")
)

// apiUserClientID is recorded as the client of API users' tokens.
const apiUserClientID = "api-user"

// scopeName is the syntax of an API-user scope such as
// "devices.function:call".
var scopeName = regexp.MustCompile(`^[a-z][a-z_]*(\.[a-z_]+)*(:[a-z_]+)+$`)

// teamMemberJSON is one entry of GET /v1/products/{p}/team.
type teamMemberJSON struct {
	ID             string   `json:"_id"`
	Username       string   `json:"username"`
	Role           roleJSON `json:"role"`
	IsProgrammatic bool     `json:"is_programmatic,omitempty"`
}

type roleJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func toRoleJSON(role string) roleJSON {
	return roleJSON{ID: strings.ToLower(strings.ReplaceAll(role, " ", "-")), Name: role}
}

// handleListTeam is GET /v1/products/{p}/team. A member's _id is its
// account's ID, or its username while the invited account does not exist.
func (s *server) handleListTeam(rq *request) error {
	members, err := s.store.TeamMembers(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	out := make([]teamMemberJSON, 0, len(members))
	for _, m := range members {
		id := m.Username
		if u, err := s.store.UserByUsername(rq.ctx, m.Username); err == nil {
			id = u.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out = append(out, teamMemberJSON{ID: id, Username: m.Username, Role: toRoleJSON(m.Role), IsProgrammatic: m.Programmatic})
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "team": out})
}

// handleInviteTeam is POST /v1/products/{p}/team: {username[, role]}
// invites an address (default role Administrator); {friendly_name,
// scopes} creates an API user. An invitation grants nothing until the
// address's owner accepts it (invites.go).
func (s *server) handleInviteTeam(rq *request) error {
	p := rq.params
	if p.has("friendly_name") || p.has("scopes") {
		return s.createAPIUser(rq)
	}
	name := normalizeEmail(p.str("username"))
	if !validEmail(name) {
		return errTeamUsername
	}
	role := store.RoleAdministrator
	if r := strings.TrimSpace(p.str("role")); r != "" {
		role = ""
		for _, known := range []string{store.RoleAdministrator, store.RoleDeveloper, store.RoleSupport, store.RoleViewOnly} {
			if strings.EqualFold(r, known) {
				role = known
			}
		}
		if role == "" {
			return errTeamRole
		}
	}
	return s.invite(rq, name, role)
}

// createAPIUser makes a programmatic team member with a never-expiring
// token limited to the requested scopes. An API user may only grant
// scopes it holds itself.
func (s *server) createAPIUser(rq *request) error {
	p := rq.params
	friendly := strings.TrimSpace(p.str("friendly_name"))
	if friendly == "" {
		return errAPIUserName
	}
	var scopes []string
	seen := map[string]bool{}
	for _, item := range p.list("scopes") {
		for _, sc := range strings.Fields(item) {
			if !scopeName.MatchString(sc) {
				return errAPIUserScope
			}
			if checkScope(rq.principal, sc) != nil {
				return errForbidden
			}
			if !seen[sc] {
				seen[sc] = true
				scopes = append(scopes, sc)
			}
		}
	}
	if len(scopes) == 0 {
		return errAPIUserScopes
	}
	password, err := auth.NewToken()
	if err != nil {
		return err
	}
	hash, err := s.auth.HashPassword(password)
	if err != nil {
		return err
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	u := &store.User{
		Username:     slugify(friendly, "api-user") + "+" + hex.EncodeToString(suffix[:]) + "@" + APIUserDomain,
		PasswordHash: hash,
		Verified:     true,
	}
	if err := s.store.CreateUser(rq.ctx, u); err != nil {
		return err
	}
	tok, err := s.addAPIUser(rq, u, scopes)
	if err != nil {
		_ = s.store.DeleteUser(rq.ctx, u.ID)
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "created": map[string]any{
		"username":        u.Username,
		"is_programmatic": true,
		"tokens":          []map[string]string{{"token": tok}},
	}})
}

func (s *server) addAPIUser(rq *request, u *store.User, scopes []string) (string, error) {
	m := &store.TeamMember{ProductID: rq.product.ID, Username: u.Username, Role: store.RoleDeveloper, Programmatic: true}
	if err := s.store.AddTeamMember(rq.ctx, m); err != nil {
		return "", err
	}
	resp, err := s.auth.IssueToken(rq.ctx, auth.Issue{
		Kind:     store.KindUser,
		UserID:   u.ID,
		ClientID: apiUserClientID,
		Scope:    strings.Join(scopes, " "),
	})
	if err != nil {
		return "", err
	}
	return resp.AccessToken, nil
}

// handleRemoveTeam is DELETE /v1/products/{p}/team/{username}: it
// removes a member, or withdraws a pending invitation. Removing an API
// user from its last product also deletes its account and tokens.
func (s *server) handleRemoveTeam(rq *request) error {
	name := normalizeEmail(rq.r.PathValue("username"))
	m, err := s.store.TeamMember(rq.ctx, rq.product.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		// Not a member: withdraw a pending invitation, if any.
		if err := s.store.DeleteInvite(rq.ctx, rq.product.ID, name); errors.Is(err, store.ErrNotFound) {
			return errTeamNotMember
		} else if err != nil {
			return err
		}
		return writeJSON(rq.w, http.StatusOK, okBody)
	}
	if err != nil {
		return err
	}
	if m.Role == store.RoleOwner {
		return errTeamOwner
	}
	if err := s.store.RemoveTeamMember(rq.ctx, rq.product.ID, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Its open product streams end now, here and on other processes.
	s.accessChanged(rq.ctx, accessNotice{ProductID: rq.product.ID, Username: name})
	if m.Programmatic {
		if err := s.deleteOrphanAPIUser(rq, name); err != nil {
			return err
		}
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// deleteOrphanAPIUser deletes an API user's account and tokens once it is
// a member of no product.
func (s *server) deleteOrphanAPIUser(rq *request, username string) error {
	if left, err := s.store.ProductsForMember(rq.ctx, username); err != nil || len(left) > 0 {
		return err
	}
	u, err := s.store.UserByUsername(rq.ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.auth.RevokeUser(rq.ctx, u.ID); err != nil {
		return err
	}
	if err := s.store.DeleteUser(rq.ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
