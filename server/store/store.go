// Package store defines the metadata storage contract of signet-server: every
// version of every TUF role of every repository (GUN), written atomically per
// publish, and a change feed of publishes and deletions.
//
// Backends live in sub-packages (postgres, sqlite, memstore) and all pass the
// conformance suite in storetest. Nothing above this package imports a driver:
// backends translate driver errors into the sentinels below.
//
// The store holds no private keys and applies no TUF rules; validation lives in
// server/tufrepo. Implementations are safe for concurrent use.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound reports that the requested GUN, role, version or checksum is
	// not stored.
	ErrNotFound = errors.New("store: not found")
	// ErrVersionExists reports that an update collided with a stored
	// (gun, role, version). Nothing of the update was stored.
	ErrVersionExists = errors.New("store: version already exists")
	// ErrUnavailable reports that the backing database cannot be reached.
	ErrUnavailable = errors.New("store: database unavailable")
)

// VersionConflictError names the role whose version already existed. It
// matches ErrVersionExists with errors.Is.
type VersionConflictError struct {
	GUN     string
	Role    string
	Version int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("store: %s %s version %d already exists", e.GUN, e.Role, e.Version)
}

// Is makes errors.Is(err, ErrVersionExists) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionExists }

// Update is one role version to store. SHA256 is the lower-case hex sha256 of
// Data, computed by the caller; Expires is the metadata's expiry, kept so the
// upkeep sweep can find what needs re-signing without parsing every file.
type Update struct {
	Role    string
	Version int64
	Data    []byte
	SHA256  string
	Expires time.Time
}

// RoleVersion names one stored version of a role by number and content
// (lower-case hex sha256 of its data).
type RoleVersion struct {
	Version int64
	SHA256  string
}

// Meta is one stored version of one role.
type Meta struct {
	GUN       string
	Role      string
	Version   int64
	Data      []byte
	SHA256    string
	Expires   time.Time
	CreatedAt time.Time
}

// Change categories of the change feed.
const (
	ChangeUpdate   = "update"
	ChangeDeletion = "deletion"
)

// Change is one entry of the change feed. For an update, Version and SHA256
// describe the timestamp stored by that update (0 and "" when the update held
// no timestamp); for a deletion both are empty.
type Change struct {
	ID        int64
	GUN       string
	Category  string
	Version   int64
	SHA256    string
	CreatedAt time.Time
}

// MaxChangesPage bounds a page of the change feed.
const MaxChangesPage = 1000

// MetaStore stores TUF metadata. All methods are safe for concurrent use,
// also from several processes sharing one database.
type MetaStore interface {
	// UpdateMany stores every update for gun in one transaction and records
	// one ChangeUpdate entry in the change feed. If any (gun, role, version)
	// is already stored, nothing is stored and the error is a
	// *VersionConflictError (errors.Is ErrVersionExists). Concurrent calls
	// for one GUN serialise.
	UpdateMany(ctx context.Context, gun string, updates []Update) error
	// GetCurrent returns the highest stored version of role.
	GetCurrent(ctx context.Context, gun, role string) (*Meta, error)
	// CurrentVersions returns, in one read, the version and sha256 of
	// what GetCurrent returns for every role gun holds, by role, without
	// the data: a publish learns the whole state of a repository in one
	// round trip and fetches data only for what it has not cached by
	// sha256. A GUN with nothing stored gives an empty map, not an error.
	CurrentVersions(ctx context.Context, gun string) (map[string]RoleVersion, error)
	// GetVersion returns one exact version of role.
	GetVersion(ctx context.Context, gun, role string, version int64) (*Meta, error)
	// GetChecksum returns the version of role whose sha256 is checksum (hex).
	GetChecksum(ctx context.Context, gun, role, checksum string) (*Meta, error)
	// Delete removes every version of every role of gun and records a
	// ChangeDeletion entry. It returns ErrNotFound if nothing was stored.
	Delete(ctx context.Context, gun string) error
	// Changes returns up to limit (at most MaxChangesPage) entries with
	// ID > since, oldest first.
	Changes(ctx context.Context, since int64, limit int) ([]Change, error)
	// Expiring returns up to limit GUNs whose current version of role
	// expires before the given time, soonest first.
	Expiring(ctx context.Context, role string, before time.Time, limit int) ([]string, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
	// StagedStore: staged changes (k-of-n signing) are part of the
	// contract, with their conformance tests in storetest.
	StagedStore
}

// Pruner removes old metadata versions (retention: see server/prune.go
// for which versions are kept). Every backend implements it.
type Pruner interface {
	// GUNs returns up to limit repository names that hold metadata and
	// sort after after, in order.
	GUNs(ctx context.Context, after string, limit int) ([]string, error)
	// PruneVersions removes gun's versions of role except the newest keep
	// (at least 1: the current version always stays) and those in
	// protect, and returns how many it removed. It never removes a root
	// version: clients walk every root from the one they trust. The change
	// feed is not touched.
	PruneVersions(ctx context.Context, gun, role string, keep int, protect []int64) (int64, error)
}

// ErrPruneRoot refuses PruneVersions of root.
var ErrPruneRoot = errors.New("store: root versions are never pruned")

// Watcher is implemented by stores that several processes share. Watch
// blocks until ctx ends, calling changed(gun) soon after any process stores
// or deletes metadata of gun, and changed("") whenever notifications may
// have been missed (for example after a reconnect): the caller must then
// forget everything it cached.
type Watcher interface {
	Watch(ctx context.Context, changed func(gun string)) error
}

// ErrStagedConflict reports that a staged change was updated or removed by
// someone else since it was read. Nothing was stored.
var ErrStagedConflict = errors.New("store: staged change changed concurrently")

// MaxStagedPerGUN bounds how many staged changes one repository may hold.
const MaxStagedPerGUN = 64

// Staged is a partially signed change to a repository's metadata, waiting
// for more signatures (k-of-n signing). Data is opaque to the store.
type Staged struct {
	GUN string
	ID  string
	// Revision is 1 when created and grows by one with every update; an
	// update names the revision it read.
	Revision  int64
	Data      []byte
	CreatedAt time.Time
	Expires   time.Time
	// Principal names who staged the change (a token ID, a registry
	// token's subject; "" when the server has no authentication). Stored
	// by CreateStaged and CreateStagedWithin, never changed after.
	Principal string
}

// StagedQuota bounds the bytes (len(Data)) of staged changes; 0 is no
// bound.
type StagedQuota struct {
	PerGUN       int64 // all staged changes of one repository
	PerPrincipal int64 // all staged changes of one principal, in every repository; not applied to Principal ""
	// CountPerPrincipal bounds how many of a repository's MaxStagedPerGUN
	// changes one principal may hold (not applied to Principal ""), so
	// that one stager cannot fill a repository for everyone else.
	CountPerPrincipal int
}

// ErrStagedQuota reports that a new staged change would exceed a
// StagedQuota. Nothing was stored. The error is a *StagedQuotaError.
var ErrStagedQuota = errors.New("store: staged-change quota exceeded")

// StagedQuotaError says which quota a staged change would exceed.
type StagedQuotaError struct {
	Scope string // "repository" or "principal"
	Limit int64
	Used  int64 // bytes staged already (with Count: changes)
	Size  int64 // bytes of the refused change
	Count bool  // the principal's count of changes in the repository, not bytes
}

func (e *StagedQuotaError) Error() string {
	if e.Count {
		return fmt.Sprintf("store: the principal holds %d staged changes in this repository, the most one principal may", e.Used)
	}
	return fmt.Sprintf("store: the %s's staged changes hold %d bytes; %d more exceed its quota of %d", e.Scope, e.Used, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrStagedQuota) true.
func (e *StagedQuotaError) Is(target error) bool { return target == ErrStagedQuota }

// CheckStagedQuota is the rule every backend applies, given the bytes
// staged already in s's repository and by s's principal, and how many
// changes s's principal holds in the repository.
func CheckStagedQuota(q StagedQuota, s *Staged, gunBytes, principalBytes int64, principalInGUN int) error {
	if q.CountPerPrincipal > 0 && s.Principal != "" && principalInGUN >= q.CountPerPrincipal {
		return &StagedQuotaError{Scope: "principal", Limit: int64(q.CountPerPrincipal), Used: int64(principalInGUN), Count: true}
	}
	size := int64(len(s.Data))
	if q.PerGUN > 0 && gunBytes+size > q.PerGUN {
		return &StagedQuotaError{Scope: "repository", Limit: q.PerGUN, Used: gunBytes, Size: size}
	}
	if q.PerPrincipal > 0 && s.Principal != "" && principalBytes+size > q.PerPrincipal {
		return &StagedQuotaError{Scope: "principal", Limit: q.PerPrincipal, Used: principalBytes, Size: size}
	}
	return nil
}

// StagedStore stores staged changes (part of MetaStore). Delete
// of a repository removes its staged changes too. Expired changes are kept
// until DeleteExpiredStaged: readers compare Expires with their own clock.
type StagedStore interface {
	// CreateStaged stores a new staged change with Revision 1. It returns
	// ErrStagedConflict if gun already holds a change with s.ID, and
	// ErrTooManyStaged if gun already holds MaxStagedPerGUN changes.
	CreateStaged(ctx context.Context, s *Staged) error
	// CreateStagedWithin is CreateStaged that also refuses, in the same
	// transaction, a change that would take gun's or s.Principal's staged
	// bytes past q, with a *StagedQuotaError.
	CreateStagedWithin(ctx context.Context, s *Staged, q StagedQuota) error
	// UpdateStaged replaces Data of the change s.GUN/s.ID if its revision
	// is still s.Revision, and then sets s.Revision to the new revision.
	// Otherwise it returns ErrStagedConflict (changed) or ErrNotFound (gone).
	UpdateStaged(ctx context.Context, s *Staged) error
	// GetStaged returns one staged change, or ErrNotFound.
	GetStaged(ctx context.Context, gun, id string) (*Staged, error)
	// ListStaged returns gun's staged changes, oldest first.
	ListStaged(ctx context.Context, gun string) ([]*Staged, error)
	// DeleteStaged removes one staged change if its revision is still
	// revision (0: any), else ErrStagedConflict; ErrNotFound if gone.
	DeleteStaged(ctx context.Context, gun, id string, revision int64) error
	// PublishStaged stores updates as UpdateMany does and, in the same
	// transaction, removes the staged change gun/id if its revision is still
	// revision. Otherwise nothing is stored and the error is
	// ErrStagedConflict (or ErrNotFound if the change is gone).
	PublishStaged(ctx context.Context, gun, id string, revision int64, updates []Update) error
	// DeleteExpiredStaged removes every staged change that expired before
	// the given time and returns how many.
	DeleteExpiredStaged(ctx context.Context, before time.Time) (int64, error)
}

// ErrTooManyStaged reports that a repository holds MaxStagedPerGUN staged
// changes already.
var ErrTooManyStaged = errors.New("store: too many staged changes")
