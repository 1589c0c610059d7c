package server

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/signetdev/signet/server/tufrepo"
)

// Staged changes: k-of-n signing of targets and delegated roles
// (tufrepo/staged.go has the rules). Reading them needs pull, changing them
// needs push, as for published metadata.

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
	if err := s.auth.Authorize(r.Context(), r, gun, ActionPull); err != nil {
		return err
	}
	list, err := s.repo.ListStaged(r.Context(), gun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"gun": gun, "staged": list})
	return nil
}

// stagedBody is a staged change with its files, as GET answers it.
type stagedBody struct {
	*tufrepo.StagedChange
	Files map[string]json.RawMessage `json:"files,omitempty"`
}

func (s *Server) getStaged(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	if err := s.auth.Authorize(r.Context(), r, gun, ActionPull); err != nil {
		return err
	}
	id, err := stagedID(r)
	if err != nil {
		return err
	}
	c, err := s.repo.GetStaged(r.Context(), gun, id)
	if err != nil {
		return err
	}
	body := stagedBody{StagedChange: c, Files: map[string]json.RawMessage{}}
	for role, data := range c.Files {
		body.Files[role] = data
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// stage answers 202 with the staged change, or 200 with Published set
// when the upload met every threshold and was published at once.
func (s *Server) stage(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	if err := s.auth.Authorize(r.Context(), r, gun, ActionPush); err != nil {
		return err
	}
	files, err := s.readUpload(w, r)
	if err != nil {
		return err
	}
	c, err := s.repo.Stage(r.Context(), gun, files)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if c.Published != nil {
		s.metrics.publishes.WithLabelValues("accepted").Inc()
		status = http.StatusOK
	}
	writeJSON(w, status, c)
	return nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	if err := s.auth.Authorize(r.Context(), r, gun, ActionPush); err != nil {
		return err
	}
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
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) withdrawStaged(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	if err := s.auth.Authorize(r.Context(), r, gun, ActionPush); err != nil {
		return err
	}
	id, err := stagedID(r)
	if err != nil {
		return err
	}
	if err := s.repo.WithdrawStaged(r.Context(), gun, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
