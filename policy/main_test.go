package policy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A Policy lives as long as its hook: no check may leave a goroutine
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
