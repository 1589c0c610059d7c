package auth

import (
	"context"
	"net/http"
)

// Action is what a request wants to do with a repository.
type Action string

// Actions, as Notary's registry-token scopes name them.
const (
	ActionPull  Action = "pull" // read metadata
	ActionPush  Action = "push" // publish, create server keys
	ActionAdmin Action = "*"    // delete trust data, rotate server keys
)

// Authorizer decides whether a request may perform action on gun (gun ""
// for the global change feed). It returns nil to allow, or an error: the
// server answers 401 or 403 as the error says (see AuthError).
type Authorizer interface {
	Authorize(ctx context.Context, r *http.Request, gun string, action Action) error
}

// AuthError is a refusal by an Authorizer. Challenge, if set, is sent as
// the WWW-Authenticate header of a 401.
type AuthError struct {
	Status    int // http.StatusUnauthorized or http.StatusForbidden
	Challenge string
	Msg       string
}

func (e *AuthError) Error() string { return e.Msg }

// AllowAll authorises everything. It is for a server that listens on
// loopback only; the command line refuses it elsewhere unless asked.
type AllowAll struct{}

// Authorize implements Authorizer.
func (AllowAll) Authorize(context.Context, *http.Request, string, Action) error { return nil }

// Identifier is implemented by authorisers that can name who a request
// comes from: staged changes record it (quotas per principal; the stager
// may withdraw its change).
type Identifier interface {
	// Principal names the caller if r carries valid credentials, else "".
	Principal(r *http.Request) string
}

// Challenger is implemented by authorisers that send clients to a token
// service: GET /v2/ answers with its challenge unless the request carries a
// valid token, so that registry clients can discover where to log in.
type Challenger interface {
	Ping(r *http.Request) error
}
