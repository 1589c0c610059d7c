package signetcli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

var sha256Hex = regexp.MustCompile(`^[a-f0-9]{64}$`)

// parseDigest is the CLI's one digest parser: a manifest digest must be
// sha256:<64 lower-case hex>. Its errors say what is wrong (algorithm,
// length, characters) and are usage errors.
func parseDigest(s string) (digest.Digest, error) {
	alg, hex, ok := strings.Cut(s, ":")
	switch {
	case s == "":
		return "", usageError{errors.New("empty digest: want sha256:<64 hex digits>")}
	case !ok:
		return "", usageError{fmt.Errorf("digest %q has no algorithm: want sha256:<64 hex digits>", s)}
	case alg != "sha256":
		return "", usageError{fmt.Errorf("digest %q: unsupported algorithm %q: signet signs sha256 manifest digests (sha256:<64 hex digits>)", s, alg)}
	case len(hex) != 64:
		return "", usageError{fmt.Errorf("digest %q: a sha256 digest has 64 hex digits, not %d", s, len(hex))}
	case !sha256Hex.MatchString(hex):
		return "", usageError{fmt.Errorf("digest %q: not lower-case hex", s)}
	}
	return digest.Digest(s), nil
}

// parseRef checks an image reference NAME:TAG (normalised by
// client.ParseRef through imageref: alpine:3 ≡ docker.io/library/alpine:3);
// a bad one is a usage error.
func parseRef(ref string) (gun, tag string, err error) {
	gun, tag, err = client.ParseRef(ref)
	if err != nil {
		return "", "", usageError{err}
	}
	return gun, tag, nil
}
