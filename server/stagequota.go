package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/server/store"
)

// Defaults of the staged-change quotas: a repository's staged changes may
// hold as much as 12 full-size uploads of a role, one principal's (in every
// repository) half that, and one principal at most 16 of a repository's 64
// changes. With the signature rule they bound what one stager can make the
// server store, and keep it from filling a repository for everyone else.
const (
	DefaultStagedBytesPerGUN       = 64 << 20
	DefaultStagedBytesPerPrincipal = 32 << 20
	// DefaultStagedPerPrincipal is how many of a repository's 64 staged
	// changes one principal may hold: one stager cannot fill it.
	DefaultStagedPerPrincipal = 16
)

// WithStagedQuota bounds the bytes of staged changes per repository and
// per principal (the Identifier's name for the caller; anonymous stagers
// share only the repository quota). Zero fields keep their defaults; a
// negative one turns that quota off.
func WithStagedQuota(q store.StagedQuota) Option { return func(o *options) { o.stagedQuota = q } }

// quotaStore is the view of the store tufrepo writes staged changes
// through: every new staged change records its principal (from the stage
// handler's context) and is held to the quota, inside the store's write.
type quotaStore struct {
	store.MetaStore
	quota store.StagedQuota
}

func (q quotaStore) CreateStaged(ctx context.Context, st *store.Staged) error {
	st.Principal = principalOf(ctx)
	return q.CreateStagedWithin(ctx, st, q.quota)
}

// withQuotas holds st's new staged changes to q.
func withQuotas(st store.MetaStore, q store.StagedQuota) store.MetaStore {
	return quotaStore{MetaStore: st, quota: q}
}

func stagedQuotaDefaults(q store.StagedQuota) store.StagedQuota {
	def := func(v *int64, d int64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&q.PerGUN, DefaultStagedBytesPerGUN)
	def(&q.PerPrincipal, DefaultStagedBytesPerPrincipal)
	switch {
	case q.CountPerPrincipal == 0:
		q.CountPerPrincipal = DefaultStagedPerPrincipal
	case q.CountPerPrincipal < 0:
		q.CountPerPrincipal = 0
	}
	return q
}

// quotaError turns a store quota refusal into an answer naming the quota.
func quotaError(qe *store.StagedQuotaError) error {
	if qe.Count {
		return &httpError{status: http.StatusConflict, code: api.CodeQuota, msg: fmt.Sprintf(
			"you already hold %d staged changes in this repository, the most one stager may; approve or withdraw some first", qe.Used)}
	}
	return &httpError{status: http.StatusConflict, code: api.CodeQuota, msg: fmt.Sprintf(
		"the %s's staged changes already hold %d bytes and this one has %d: over the quota of %d bytes; approve or withdraw staged changes first",
		qe.Scope, qe.Used, qe.Size, qe.Limit)}
}
