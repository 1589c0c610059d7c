package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/server/auth"

	"github.com/go-chi/chi/v5"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo"
)

// Staged changes: k-of-n signing of targets and delegated roles
// (tufrepo/staged.go has the rules). Reading them needs pull, changing them
// needs push, as for published metadata. Besides: a staged change must
// carry a valid signature by a key of a role it changes (tufrepo), its
// bytes count against quotas per repository and per principal
// (stagequota.go), and only who staged it, an admin, or a key holder of
// one of its roles (proved by a new signature, sent as for approve) may
// withdraw it.

// stagedID reads the {id} of a staged-change URL: IDs are hex.
func stagedID(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if id == "" || len(id) > 64 {
		return "", notFound("no such staged change")
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", notFound("no such staged change")
		}
	}
	return id, nil
}

func (s *Server) listStaged(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	list, err := s.repo.ListStaged(r.Context(), gun)
	if err != nil {
		return err
	}
	out := api.StagedList{GUN: gun, Staged: make([]api.StagedChange, len(list))}
	for i := range list {
		out.Staged[i] = stagedJSON(&list[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// stagedJSON is a staged change as the API answers it; its files (set by
// GetStaged only) go out as the JSON they are.
func stagedJSON(c *tufrepo.StagedChange) api.StagedChange {
	out := api.StagedChange{ID: c.ID, Created: c.Created, Expires: c.Expires, Published: c.Published, Roles: make([]api.StagedRole, len(c.Roles))}
	for i, r := range c.Roles {
		out.Roles[i] = api.StagedRole(r)
	}
	if c.Files != nil {
		out.Files = make(map[string]json.RawMessage, len(c.Files))
		for role, data := range c.Files {
			out.Files[role] = data
		}
	}
	return out
}

func (s *Server) getStaged(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	id, err := stagedID(r)
	if err != nil {
		return err
	}
	c, err := s.repo.GetStaged(r.Context(), gun, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stagedJSON(c))
	return nil
}

// stage answers 202 with the staged change, or 200 with Published set
// when the upload met every threshold and was published at once.
func (s *Server) stage(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	files, err := s.readUpload(w, r)
	if err != nil {
		return err
	}
	ctx := context.WithValue(r.Context(), principalKey{}, s.principal(r))
	c, err := s.repo.Stage(ctx, gun, files)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if c.Published != nil {
		s.metrics.publishes.WithLabelValues("accepted").Inc()
		status = http.StatusOK
	}
	writeJSON(w, status, stagedJSON(c))
	return nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	id, err := stagedID(r)
	if err != nil {
		return err
	}
	files, err := s.readUpload(w, r)
	if err != nil {
		return err
	}
	c, err := s.repo.Approve(r.Context(), gun, id, files)
	if err != nil {
		return err
	}
	if c.Published != nil {
		s.metrics.publishes.WithLabelValues("accepted").Inc()
	}
	writeJSON(w, http.StatusOK, stagedJSON(c))
	return nil
}

func (s *Server) withdrawStaged(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	id, err := stagedID(r)
	if err != nil {
		return err
	}
	if err := s.mayWithdraw(w, r, gun, id); err != nil {
		return err
	}
	if err := s.repo.WithdrawStaged(r.Context(), gun, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mayWithdraw allows the withdrawal of gun/id by an admin of gun, by the
// principal that staged it, or by a caller whose request body (the
// change's roles, as approve sends them) carries a new valid signature by
// a key of one of its roles.
func (s *Server) mayWithdraw(w http.ResponseWriter, r *http.Request, gun, id string) error {
	ctx := r.Context()
	admin := s.auth.Authorize(ctx, r, gun, auth.ActionAdmin)
	if admin == nil {
		return nil
	}
	st, err := s.store.GetStaged(ctx, gun, id)
	if errors.Is(err, store.ErrNotFound) {
		return &httpError{status: http.StatusNotFound, code: tufrepo.CodeNotFound, msg: fmt.Sprintf("no staged change %s in %s", id, gun)}
	}
	if err != nil {
		return err
	}
	if p := s.principal(r); p != "" && p == st.Principal {
		return nil
	}
	if r.ContentLength != 0 && r.Header.Get("Content-Type") != "" {
		files, err := s.readUpload(w, r)
		if err != nil {
			return err
		}
		return s.repo.CheckKeyHolder(ctx, gun, id, files)
	}
	return &httpError{status: http.StatusForbidden, code: api.CodeDenied, msg: fmt.Sprintf(
		"staged change %s may be withdrawn by who staged it, by an admin of %s, or by a key holder of one of its roles (send its roles signed, as approve does)", id, gun)}
}
