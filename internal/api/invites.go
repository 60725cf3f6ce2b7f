package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Team invitations (docs/api.md, Team invitations). POST
// /v1/products/{p}/team with a username records a pending invitation and
// a secret token; the address joins the team only when its owner, logged
// in as that address, presents the token to POST
// /v1/user/team-invites/accept. The token reaches the owner by e-mail
// when Deps.Mail is set; without e-mail the inviter gets it in the answer
// and hands it over, or the operator accepts with `wick team accept`.
// Either way whoever merely signs up with the address (sign-up does not
// verify addresses) gets nothing.

var (
	errInviteToken   = errorf(http.StatusBadRequest, "Invalid or expired team invitation")
	errInviteAddress = errorf(http.StatusForbidden, "This invitation is for another e-mail address: log in as the invited address to accept it")
	errInviteNone    = errorf(http.StatusNotFound, "No pending invitation to this product")
)

// inviteJSON is one pending invitation as the team sees it.
type inviteJSON struct {
	Username  string   `json:"username"`
	Role      roleJSON `json:"role"`
	InvitedBy string   `json:"invited_by,omitempty"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at"`
}

func toInviteJSON(inv *store.Invite) inviteJSON {
	return inviteJSON{Username: inv.Username, Role: toRoleJSON(inv.Role), InvitedBy: inv.InvitedBy,
		CreatedAt: isoTime(inv.CreatedAt), ExpiresAt: isoTime(inv.ExpiresAt)}
}

// invite records (or renews) the pending invitation of name to
// rq.product and answers Particle's {"ok":true,"invited":{"username"}},
// with the invitation's role and expiry, and its token when no e-mail
// carries it.
func (s *server) invite(rq *request, name, role string) error {
	if _, err := s.store.TeamMember(rq.ctx, rq.product.ID, name); err == nil {
		return errTeamExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	token, err := auth.NewToken()
	if err != nil {
		return err
	}
	inv := &store.Invite{
		ProductID: rq.product.ID,
		Username:  name,
		Role:      role,
		TokenHash: auth.HashToken(token),
		CreatedAt: rq.now,
		ExpiresAt: rq.now.Add(s.cfg.InviteLifetime),
	}
	if rq.principal.Kind == store.KindUser {
		u, err := s.currentUser(rq)
		if err != nil {
			return err
		}
		inv.InvitedBy = u.Username
	}
	err = s.store.PutInvite(rq.ctx, inv)
	if errors.Is(err, store.ErrConflict) {
		return errTeamExists
	}
	if err != nil {
		return err
	}
	body := map[string]any{"ok": true, "invited": map[string]any{
		"username": name, "role": toRoleJSON(role), "pending": true, "expires_at": isoTime(inv.ExpiresAt)}}
	if s.mail != nil {
		s.sendInviteMail(rq, inv, rq.product, token)
		body["invite_sent"] = true
	} else {
		// No e-mail: the inviter hands the token to the address's owner.
		body["invite_token"] = token
	}
	return writeJSON(rq.w, http.StatusOK, body)
}

// handleListInvites is GET /v1/products/{p}/team/invites: the product's
// pending invitations.
func (s *server) handleListInvites(rq *request) error {
	list, err := s.store.InvitesByProduct(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	out := make([]inviteJSON, 0, len(list))
	for i := range list {
		if rq.now.Before(list[i].ExpiresAt) {
			out = append(out, toInviteJSON(&list[i]))
		}
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "invites": out})
}

// myInviteJSON is one invitation as its invitee sees it.
type myInviteJSON struct {
	Product   productRefJSON `json:"product"`
	Role      roleJSON       `json:"role"`
	InvitedBy string         `json:"invited_by,omitempty"`
	CreatedAt string         `json:"created_at"`
	ExpiresAt string         `json:"expires_at"`
}

type productRefJSON struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// handleMyInvites is GET /v1/user/team-invites: the pending invitations
// addressed to the caller's username.
func (s *server) handleMyInvites(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	list, err := s.store.InvitesByUsername(rq.ctx, u.Username)
	if err != nil {
		return err
	}
	out := make([]myInviteJSON, 0, len(list))
	for _, inv := range list {
		if !rq.now.Before(inv.ExpiresAt) {
			continue
		}
		prod, err := s.store.ProductByID(rq.ctx, inv.ProductID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		out = append(out, myInviteJSON{Product: productRefJSON{prod.ID, prod.Slug, prod.Name}, Role: toRoleJSON(inv.Role),
			InvitedBy: inv.InvitedBy, CreatedAt: isoTime(inv.CreatedAt), ExpiresAt: isoTime(inv.ExpiresAt)})
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "invites": out})
}

// handleAcceptInvite is POST /v1/user/team-invites/accept {token}: the
// caller, logged in as the invited address, joins the team.
func (s *server) handleAcceptInvite(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(rq.params.str("token"))
	if !auth.ValidTokenFormat(token) {
		return errInviteToken
	}
	inv, err := s.store.InviteByHash(rq.ctx, auth.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return errInviteToken
	}
	if err != nil {
		return err
	}
	if !rq.now.Before(inv.ExpiresAt) {
		return errInviteToken
	}
	if inv.Username != u.Username {
		return errInviteAddress
	}
	m, err := s.store.AcceptInvite(rq.ctx, inv.ProductID, inv.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errInviteToken // accepted or withdrawn meanwhile
	case errors.Is(err, store.ErrConflict):
		return errTeamExists
	case err != nil:
		return err
	}
	prod, err := s.store.ProductByID(rq.ctx, m.ProductID)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true,
		"product": productRefJSON{prod.ID, prod.Slug, prod.Name}, "role": toRoleJSON(m.Role)})
}

// handleDeclineInvite is DELETE /v1/user/team-invites/{p}: the caller
// turns down the invitation of its address to product {p}.
func (s *server) handleDeclineInvite(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	prod, err := s.productFromPath(rq)
	if errors.Is(err, errProductNotFound) {
		return errInviteNone
	}
	if err != nil {
		return err
	}
	if err := s.store.DeleteInvite(rq.ctx, prod.ID, u.Username); errors.Is(err, store.ErrNotFound) {
		return errInviteNone
	} else if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}
