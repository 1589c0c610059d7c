// Package api is the wire contract of signet-server's HTTP API, shared by
// the server's handlers and the client library, as signer/api/wire.go is
// for the signer: URL paths, request and response bodies, and the error
// envelope {"errors":[{"code","message","detail"}]} with its codes as
// typed constants.
//
// It holds types and pure functions only, imports nothing of signet's,
// and is safe for concurrent use. Changing a field name or a code here
// changes the API: clients in the field decode these.
package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// Paths. A GUN has slashes and is written into paths as it is.

// TUFPath is the prefix of gun's TUF metadata: GET {role}.json,
// {version}.{role}.json, {sha256}.{role}.json and {role}.key; POST to
// publish; DELETE to delete the repository's trust data.
func TUFPath(gun string) string { return "/v2/" + gun + "/_trust/tuf/" }

// KeyPath is where the server's public key of role (timestamp or
// snapshot) is fetched (created on first ask with push rights) and
// rotated (POST).
func KeyPath(gun, role string) string { return TUFPath(gun) + role + ".key" }

// StagedPath is gun's staged change id ("": the list, or a new one).
func StagedPath(gun, id string) string { return "/v2/" + gun + "/_trust/staged/" + id }

// ChangefeedPath pages through publishes and deletions (?since=ID&limit=N).
const ChangefeedPath = "/v2/_trust/changefeed"

// UploadField is the multipart/form-data field of each uploaded role; its
// file name is the role's name.
const UploadField = "files"

// PublishResult answers a publish.
type PublishResult struct {
	GUN string `json:"gun"`
	// Versions maps every stored role (uploaded and server-made) to its
	// new version.
	Versions map[string]int64 `json:"versions"`
}

// StagedRole is one role of a staged change and its signatures so far.
type StagedRole struct {
	Role        string `json:"role"`
	Version     int64  `json:"version"`
	BaseVersion int64  `json:"base_version"`
	Threshold   int    `json:"threshold"`
	// SignedBy lists the key IDs whose signatures verify, one per
	// distinct public key, sorted.
	SignedBy []string `json:"signed_by"`
}

// StagedChange is a change waiting on the server for signatures.
type StagedChange struct {
	ID      string       `json:"id"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
	Roles   []StagedRole `json:"roles"`
	// Published is set when the change met every threshold and was
	// published: every stored role and its new version.
	Published map[string]int64 `json:"published,omitempty"`
	// Files are the partially signed roles; only GET of one change
	// carries them.
	Files map[string]json.RawMessage `json:"files,omitempty"`
}

// Pending reports, per role below its threshold, how many more
// signatures it needs.
func (s *StagedChange) Pending() map[string]int {
	out := map[string]int{}
	for _, r := range s.Roles {
		if n := r.Threshold - len(r.SignedBy); n > 0 {
			out[r.Role] = n
		}
	}
	return out
}

// StagedList answers GET StagedPath(gun, "").
type StagedList struct {
	GUN    string         `json:"gun"`
	Staged []StagedChange `json:"staged"`
}

// Change is one record of the change feed.
type Change struct {
	ID        int64     `json:"id"`
	GUN       string    `json:"gun"`
	Category  string    `json:"category"`
	Version   int64     `json:"version,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ChangefeedPage answers GET ChangefeedPath; Next is the since of the
// next page.
type ChangefeedPage struct {
	Count   int      `json:"count"`
	Records []Change `json:"records"`
	Next    int64    `json:"next"`
}

// Code is a stable error code of the envelope.
type Code string

// Codes of refusals by the TUF rules (400 unless said).
const (
	CodeMalformed        Code = "MALFORMED_METADATA"       // not parseable TUF JSON of the right type
	CodeUnknownRole      Code = "UNKNOWN_ROLE"             // role not delegated by anyone, or not allowed here
	CodeInvalid          Code = "INVALID_METADATA"         // well-formed but breaks a TUF rule
	CodeSignature        Code = "INVALID_SIGNATURE"        // below threshold, bad or duplicate signatures
	CodeExpired          Code = "EXPIRED_METADATA"         // expired on arrival
	CodeBadVersion       Code = "INVALID_VERSION"          // version not acceptable (root not old+1, …)
	CodeVersionConflict  Code = "VERSION_CONFLICT"         // 409: not newer than what is stored (a lost race)
	CodePathNotDelegated Code = "PATH_NOT_DELEGATED"       // delegated role lists a target outside its paths
	CodeServerKey        Code = "SERVER_KEY_MISSING"       // root does not name the server's online key
	CodeSnapshot         Code = "SNAPSHOT_MISMATCH"        // client snapshot does not match what it lists
	CodeMissingRole      Code = "MISSING_ROLE"             // a required role is not in the upload
	CodeNotFound         Code = "METADATA_NOT_FOUND"       // 404: nothing stored
	CodeSignerDown       Code = "SIGNER_UNAVAILABLE"       // 503: online signer unreachable
	CodeStoreDown        Code = "DATABASE_UNAVAILABLE"     // 503: database unreachable
	CodeUnsupported      Code = "UNSUPPORTED_OPERATION"    // e.g. a key for a role that is not server-managed
	CodeStaleStaged      Code = "STAGED_CHANGE_STALE"      // 409: a role of the staged change was published since
	CodeStagedExpired    Code = "STAGED_CHANGE_EXPIRED"    // 410: a staged change outlived its lifetime
	CodeTooManyStaged    Code = "TOO_MANY_STAGED"          // 409: the repository holds too many staged changes
	CodeNotPublished     Code = "DELEGATION_NOT_PUBLISHED" // a delegation to a role the snapshot would not list
)

// Codes of the HTTP layer.
const (
	CodeInvalidGUN      Code = "INVALID_GUN"
	CodeBadRequest      Code = "BAD_REQUEST"
	CodeUnsupportedType Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeTooLarge        Code = "TOO_LARGE"          // 413
	CodeNoEndpoint      Code = "NOT_FOUND"          // 404: no such endpoint or staged change
	CodeMethod          Code = "METHOD_NOT_ALLOWED" // 405
	CodeUnauthorized    Code = "UNAUTHORIZED"       // 401, with a WWW-Authenticate challenge
	CodeDenied          Code = "DENIED"             // 403
	CodeUnavailable     Code = "UNAVAILABLE"        // 503
	CodeInternal        Code = "INTERNAL_ERROR"     // 500; the server log has the cause
	CodeTimeout         Code = "REQUEST_TIMEOUT"    // 503: stopped at the server's deadline
	CodeQuota           Code = "QUOTA_EXCEEDED"     // 409
	CodeTooManyRequests Code = "TOO_MANY_REQUESTS"  // 429
)

// ErrorBody is the error envelope of every non-2xx answer.
type ErrorBody struct {
	Errors []Error `json:"errors"`
}

// Error is one error of the envelope.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func (e Error) String() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }
