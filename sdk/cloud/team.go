package cloud

import (
	"context"
	"net/url"
	"strings"
)

// TeamMember is one entry of ListTeam.
type TeamMember struct {
	// ID is the member's account ID (its username while an invited
	// account does not exist yet).
	ID string `json:"_id"`
	// Username is the member's e-mail.
	Username string `json:"username"`
	// Role is the member's role.
	Role struct {
		// ID is the role's URL name, e.g. "administrator".
		ID string `json:"id"`
		// Name is the role's name, e.g. "Administrator".
		Name string `json:"name"`
	} `json:"role"`
	// IsProgrammatic marks an API user.
	IsProgrammatic bool `json:"is_programmatic,omitempty"`
}

// ListTeam is GET /v1/products/{product}/team.
func (c *Client) ListTeam(ctx context.Context, product string) ([]TeamMember, error) {
	var out struct {
		Team []TeamMember `json:"team"`
	}
	err := c.do(ctx, call{method: "GET", path: productPath(product) + "/team"}, &out)
	return out.Team, err
}

// InviteTeamMember is POST /v1/products/{product}/team: it invites the
// account username with role ("" for Administrator; also Developer,
// Support, View-only). The invitee accepts with its own token.
func (c *Client) InviteTeamMember(ctx context.Context, product, username, role string) error {
	form := url.Values{"username": {username}}
	if role != "" {
		form.Set("role", role)
	}
	return c.do(ctx, call{method: "POST", path: productPath(product) + "/team", form: form}, nil)
}

// RemoveTeamMember is DELETE /v1/products/{product}/team/{username}.
func (c *Client) RemoveTeamMember(ctx context.Context, product, username string) error {
	return c.do(ctx, call{method: "DELETE", path: productPath(product) + "/team/" + pathEscape(username)}, nil)
}

// APIUser is the answer of CreateAPIUser.
type APIUser struct {
	// Username is the API user's generated account name.
	Username string
	// Token is its access token, shown only here.
	Token string
}

// CreateAPIUser is POST /v1/products/{product}/team with friendly_name and
// scopes: a programmatic team member whose token may call only the routes
// its scopes (e.g. "devices:list", "devices.function:call") allow.
func (c *Client) CreateAPIUser(ctx context.Context, product, friendlyName string, scopes []string) (*APIUser, error) {
	form := url.Values{"friendly_name": {friendlyName}, "scopes": {strings.Join(scopes, " ")}}
	var out struct {
		Created struct {
			Username string `json:"username"`
			Tokens   []struct {
				Token string `json:"token"`
			} `json:"tokens"`
		} `json:"created"`
	}
	if err := c.do(ctx, call{method: "POST", path: productPath(product) + "/team", form: form}, &out); err != nil {
		return nil, err
	}
	u := &APIUser{Username: out.Created.Username}
	if len(out.Created.Tokens) > 0 {
		u.Token = out.Created.Tokens[0].Token
	}
	return u, nil
}
