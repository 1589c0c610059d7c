package client

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// ValidateGUN reports whether gun is a repository name as signet-server
// accepts it: an OCI repository name (registry.example.com/team/app) in
// lower case, at most 255 bytes. It is the server's rule
// (server.ValidateGUN; a test keeps them equal), checked here so that a
// command fails before it makes keys or files for a name the server would
// refuse.
// TODO: move both into the shared reference package (imageref) once it is
// on main.
func ValidateGUN(gun string) error {
	if len(gun) > reference.RepositoryNameTotalLengthMax {
		return fmt.Errorf("client: repository name is longer than %d bytes", reference.RepositoryNameTotalLengthMax)
	}
	named, err := reference.WithName(gun)
	if err != nil || named.Name() != gun || strings.ToLower(gun) != gun {
		return fmt.Errorf("client: %q is not a valid repository name (a lower-case OCI name such as registry.example.com/team/app, without tag)", gun)
	}
	return nil
}

// CheckBins reports whether n is a valid number of hashed bins: a power
// of two from 2 to MaxBins.
func CheckBins(n int) error {
	_, err := binBits(n)
	return err
}
