package notary

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxMetadataSize bounds every metadata file a source returns.
const MaxMetadataSize = 32 << 20

// Want selects one version of a role: the latest (zero value), a version
// number, or the file with a sha256 (hex).
type Want struct {
	Version int64
	SHA256  string
}

func (w Want) String() string {
	switch {
	case w.SHA256 != "":
		return "sha256 " + w.SHA256[:min(12, len(w.SHA256))]
	case w.Version > 0:
		return "version " + strconv.FormatInt(w.Version, 10)
	}
	return "latest"
}

// Source serves Notary metadata files of a GUN, byte for byte. A role that
// the source does not have is an error wrapping ErrNotFound, and so is a
// version it does not have. Asked for a checksum it does not hold, a local
// source returns the latest file instead: callers check every file against
// the hashes that vouch for it anyway, and a mismatch is the clearer
// report.
type Source interface {
	Get(ctx context.Context, gun, role string, want Want) ([]byte, error)
	// String names the source in reports.
	String() string
}

// validRole reports whether role is a Notary role name: root, snapshot,
// timestamp, targets or targets/NAME[/NAME…] with plain segments.
func validRole(role string) bool {
	switch role {
	case RoleRoot, RoleSnapshot, RoleTimestamp, RoleTargets:
		return true
	}
	rest, ok := strings.CutPrefix(role, RoleTargets+"/")
	if !ok || len(role) > 255 {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00*?[") {
			return false
		}
	}
	return true
}

var gunRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$`)

// ValidGUN reports whether gun is an image name without tag (as Notary
// and Docker name repositories), safe to use as a path.
func ValidGUN(gun string) bool {
	return len(gun) <= 255 && gunRE.MatchString(gun) && !strings.Contains(gun, "..")
}

func checkArgs(gun, role string) error {
	if !ValidGUN(gun) {
		return fmt.Errorf("notary: %q is not a repository name", gun)
	}
	if !validRole(role) {
		return fmt.Errorf("notary: %q is not a Notary role", role)
	}
	return nil
}

func sumHex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// readLimited reads a file of at most MaxMetadataSize bytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxMetadataSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("notary: %s is larger than %d bytes", name, MaxMetadataSize)
	}
	return data, nil
}

// versionOf reads the version of a Notary document (0 if it has none).
func versionOf(data []byte) int64 {
	var c struct {
		Signed Common `json:"signed"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return 0
	}
	return c.Signed.Version
}

// ServerDir is a directory of files as notary-server stored them:
// DIR/<gun>/<role>.<version>.json (a delegation at
// DIR/<gun>/targets/releases.<version>.json).
type ServerDir struct{ Dir string }

func (s ServerDir) String() string { return "directory " + s.Dir }

// Get implements Source.
func (s ServerDir) Get(_ context.Context, gun, role string, want Want) ([]byte, error) {
	if err := checkArgs(gun, role); err != nil {
		return nil, err
	}
	versions, err := s.versions(gun, role)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("notary: %s of %s in %s: %w", role, gun, s.Dir, ErrNotFound)
	}
	name := func(v int64) string {
		return filepath.Join(s.Dir, filepath.FromSlash(gun), filepath.FromSlash(role)+"."+strconv.FormatInt(v, 10)+".json")
	}
	switch {
	case want.SHA256 != "":
		for _, v := range slices.Backward(versions) {
			data, err := readLimited(name(v))
			if err != nil {
				return nil, fmt.Errorf("notary: %w", err)
			}
			if sumHex(data) == strings.ToLower(want.SHA256) {
				return data, nil
			}
		}
		return s.read(name(versions[len(versions)-1]))
	case want.Version > 0:
		if !slices.Contains(versions, want.Version) {
			return nil, fmt.Errorf("notary: %s of %s %s in %s: %w", role, gun, want, s.Dir, ErrNotFound)
		}
		return s.read(name(want.Version))
	}
	return s.read(name(versions[len(versions)-1]))
}

func (s ServerDir) read(name string) ([]byte, error) {
	data, err := readLimited(name)
	if err != nil {
		return nil, fmt.Errorf("notary: %w", err)
	}
	return data, nil
}

// versions lists the stored versions of role, ascending.
func (s ServerDir) versions(gun, role string) ([]int64, error) {
	dir := filepath.Join(s.Dir, filepath.FromSlash(gun), filepath.FromSlash(path.Dir(role)))
	base := path.Base(role) + "."
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notary: %w", err)
	}
	var out []int64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base)
		if !ok || e.IsDir() {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".json")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v < 1 {
			continue
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// TrustDir is a Notary or Docker client trust directory (~/.notary,
// ~/.docker/trust): DIR/tuf/<gun>/metadata/<role>.json holds the latest
// metadata the client verified, DIR/private/*.key its encrypted keys. Its
// root.json is the root the client pinned (trusted on first use and kept
// up to date along the root chain).
type TrustDir struct{ Dir string }

func (t TrustDir) String() string { return "trust directory " + t.Dir }

func (t TrustDir) metadataDir(gun string) string {
	return filepath.Join(t.Dir, "tuf", filepath.FromSlash(gun), "metadata")
}

// Get implements Source: only the cached (latest) version of each role.
func (t TrustDir) Get(_ context.Context, gun, role string, want Want) ([]byte, error) {
	if err := checkArgs(gun, role); err != nil {
		return nil, err
	}
	name := filepath.Join(t.metadataDir(gun), filepath.FromSlash(role)+".json")
	data, err := readLimited(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("notary: %s of %s in %s: %w", role, gun, t.Dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("notary: %w", err)
	}
	if want.Version > 0 && versionOf(data) != want.Version {
		return nil, fmt.Errorf("notary: %s of %s %s in %s (it caches only the latest): %w", role, gun, want, t.Dir, ErrNotFound)
	}
	return data, nil
}

// PinnedRoot returns the root.json the client trusts for gun.
func (t TrustDir) PinnedRoot(gun string) ([]byte, error) {
	return t.Get(context.Background(), gun, RoleRoot, Want{})
}

// GUNs lists the repositories the trust directory holds metadata of.
func (t TrustDir) GUNs() ([]string, error) {
	base := filepath.Join(t.Dir, "tuf")
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "metadata" {
			if _, err := os.Stat(filepath.Join(p, "root.json")); err == nil {
				rel, err := filepath.Rel(base, filepath.Dir(p))
				if err != nil {
					return err
				}
				if gun := filepath.ToSlash(rel); ValidGUN(gun) {
					out = append(out, gun)
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("notary: %s has no tuf/ directory: not a Notary or Docker trust directory", t.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("notary: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// IsTrustDir reports whether dir looks like a client trust directory
// (it has tuf/ or private/) rather than a directory of server files.
func IsTrustDir(dir string) bool {
	for _, sub := range []string{"tuf", "private"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// Server is a notary-server's read API:
// GET {URL}/v2/{gun}/_trust/tuf/{role}.json (latest),
// {version}.{role}.json and {role}.{sha256}.json. HTTPClient returns the
// client for requests about gun (one that holds a registry token where the
// server asks for one); nil means http.DefaultClient.
type Server struct {
	URL        string
	HTTPClient func(ctx context.Context, gun string) (*http.Client, error)
}

func (s Server) String() string { return "notary server " + s.URL }

// Get implements Source.
func (s Server) Get(ctx context.Context, gun, role string, want Want) ([]byte, error) {
	if err := checkArgs(gun, role); err != nil {
		return nil, err
	}
	file := role + ".json"
	switch {
	case want.SHA256 != "":
		file = role + "." + strings.ToLower(want.SHA256) + ".json"
	case want.Version > 0:
		file = strconv.FormatInt(want.Version, 10) + "." + role + ".json"
	}
	u := strings.TrimSuffix(s.URL, "/") + "/v2/" + gun + "/_trust/tuf/" + file
	hc := http.DefaultClient
	if s.HTTPClient != nil {
		var err error
		if hc, err = s.HTTPClient(ctx, gun); err != nil {
			return nil, fmt.Errorf("notary: %s: %w", s.URL, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("notary: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("notary: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("notary: GET %s: %w", u, ErrNotFound)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("notary: GET %s: %s (log in to the registry: credentials from SIGNET_REGISTRY_AUTH or ~/.docker/config.json)", u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("notary: GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("notary: GET %s: %w", u, err)
	}
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("notary: GET %s: larger than %d bytes", u, MaxMetadataSize)
	}
	return data, nil
}
