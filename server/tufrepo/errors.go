package tufrepo

import (
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/api"
)

// Code is a stable, machine-readable reason for refusing a request: the
// API's error code (package api owns the list). The server turns codes
// into HTTP statuses in one place (server/errors.go).
type Code = api.Code

// Codes of refused publishes and requests.
const (
	CodeMalformed        = api.CodeMalformed
	CodeUnknownRole      = api.CodeUnknownRole
	CodeInvalid          = api.CodeInvalid
	CodeSignature        = api.CodeSignature
	CodeExpired          = api.CodeExpired
	CodeBadVersion       = api.CodeBadVersion
	CodeVersionConflict  = api.CodeVersionConflict
	CodePathNotDelegated = api.CodePathNotDelegated
	CodeServerKey        = api.CodeServerKey
	CodeSnapshot         = api.CodeSnapshot
	CodeMissingRole      = api.CodeMissingRole
	CodeNotFound         = api.CodeNotFound
	CodeSignerDown       = api.CodeSignerDown
	CodeStoreDown        = api.CodeStoreDown
	CodeUnsupported      = api.CodeUnsupported
	CodeStaleStaged      = api.CodeStaleStaged
	CodeStagedExpired    = api.CodeStagedExpired
	CodeTooManyStaged    = api.CodeTooManyStaged
	CodeNotPublished     = api.CodeNotPublished
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
