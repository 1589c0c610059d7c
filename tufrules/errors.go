package tufrules

import (
	"errors"
	"fmt"
)

// ErrRule is matched (errors.Is) by every rule violation this package
// reports.
var ErrRule = errors.New("breaks a TUF repository rule")

// RuleError is a rule violation: what breaks it, said so that the person
// who made the metadata can fix it.
type RuleError struct{ Msg string }

func (e *RuleError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrRule) true.
func (e *RuleError) Is(t error) bool { return t == ErrRule }

func broken(format string, args ...any) error {
	return &RuleError{Msg: fmt.Sprintf(format, args...)}
}
