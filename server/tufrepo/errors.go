package tufrepo

import (
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Code is a stable, machine-readable reason for refusing a request. The
// server turns codes into HTTP statuses in one place (server/errors.go).
type Code string

// Codes of refused publishes and requests.
const (
	CodeMalformed        Code = "MALFORMED_METADATA"       // not parseable TUF JSON of the right type
	CodeUnknownRole      Code = "UNKNOWN_ROLE"             // role not delegated by anyone, or not allowed here
	CodeInvalid          Code = "INVALID_METADATA"         // well-formed but breaks a TUF rule
	CodeSignature        Code = "INVALID_SIGNATURE"        // below threshold, bad or duplicate signatures
	CodeExpired          Code = "EXPIRED_METADATA"         // expired on arrival
	CodeBadVersion       Code = "INVALID_VERSION"          // version not acceptable (root not old+1, …)
	CodeVersionConflict  Code = "VERSION_CONFLICT"         // a version that is not newer than what is stored
	CodePathNotDelegated Code = "PATH_NOT_DELEGATED"       // delegated role lists a target outside its paths
	CodeServerKey        Code = "SERVER_KEY_MISSING"       // root does not name the server's online key
	CodeSnapshot         Code = "SNAPSHOT_MISMATCH"        // client snapshot does not match what it lists
	CodeMissingRole      Code = "MISSING_ROLE"             // a required role is not in the upload
	CodeNotFound         Code = "METADATA_NOT_FOUND"       // nothing stored
	CodeSignerDown       Code = "SIGNER_UNAVAILABLE"       // online signer unreachable
	CodeStoreDown        Code = "DATABASE_UNAVAILABLE"     // database unreachable
	CodeUnsupported      Code = "UNSUPPORTED_OPERATION"    // e.g. a key for a role that is not server-managed
	CodeStaleStaged      Code = "STAGED_CHANGE_STALE"      // a role of the staged change was published since
	CodeStagedExpired    Code = "STAGED_CHANGE_EXPIRED"    // a staged change outlived its lifetime
	CodeTooManyStaged    Code = "TOO_MANY_STAGED"          // the repository holds too many staged changes
	CodeNotPublished     Code = "DELEGATION_NOT_PUBLISHED" // a delegation to a role the snapshot would not list
)

// Error is a refusal with a stable code, the role it concerns (if any) and
// a message meant for the user. Err, if set, is the underlying cause.
type Error struct {
	Code Code
	Role string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Role != "" {
		return fmt.Sprintf("%s: %s", e.Role, e.Msg)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func refuse(code Code, role, format string, args ...any) *Error {
	return &Error{Code: code, Role: role, Msg: fmt.Sprintf(format, args...)}
}

// fromTUF classifies an error returned by go-tuf while checking role.
func fromTUF(role string, err error) *Error {
	code := CodeInvalid
	switch {
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		code = CodeSignature
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		code = CodeExpired
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		code = CodeBadVersion
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		code = CodeSnapshot
	}
	return &Error{Code: code, Role: role, Msg: err.Error(), Err: err}
}
