package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/signetdev/signet/server/auth"
)

// explainAuth puts why an action was needed in front of an auth.Authorizer's
// refusal, keeping its status and challenge.
func explainAuth(err error, why string) error {
	var ae *auth.AuthError
	if !errors.As(err, &ae) {
		return err
	}
	out := *ae
	out.Msg = why + ": " + ae.Msg
	return &out
}

type principalKey struct{}

// principalOf returns the principal the stage handler put in ctx.
func principalOf(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

func (s *Server) principal(r *http.Request) string {
	if id, ok := s.auth.(auth.Identifier); ok {
		return id.Principal(r)
	}
	return ""
}
