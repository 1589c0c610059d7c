// The differential test resolves every tag with four clients after every
// step; the race detector slows that about fivefold without adding anything
// (the clients' concurrency is tested in client/): it runs without -race, as
// its own step of `make test`.

//go:build !race

package difftest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"go.uber.org/goleak"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/tufedit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// passphrase of every test key file.
const passphrase = "test passphrase"

func pass(string, string) ([]byte, error) { return []byte(passphrase), nil }

// absentTags are resolved in every repository besides the tags it ever
// signed; they are never signed, and their names fall inside the path
// patterns the flows delegate (release-*, app-*, team-*, alice-*) so that
// the walk for them reaches delegated roles.
var absentTags = []string{"never-signed", "release-absent", "app-absent", "team-absent", "team-dave-absent", "alice-absent"}

// kind is how a resolution ended.
type kind string

const (
	found     kind = "found"      // a trusted role lists the tag: digest and length
	notSigned kind = "not signed" // the walk ended without a role listing the tag, nothing failed
	refused   kind = "refused"    // verification failed (or the client could not decide)
)

// answer is one client's resolution of one tag. Two answers agree when
// their kind, digest and length are equal; detail (the error) is for the
// report only. "not signed" and "refused" are kept apart: a client that
// says "not signed" where the reference refuses hides a trust failure
// (signet exits 3 instead of 4, and a policy that admits unsigned images
// would admit it).
type answer struct {
	kind   kind
	sha256 string
	length int64
	detail string
}

func (a answer) String() string {
	switch a.kind {
	case found:
		return fmt.Sprintf("sha256:%s… length %d", a.sha256[:min(12, len(a.sha256))], a.length)
	case notSigned:
		return "not signed"
	}
	return "refused (" + a.detail + ")"
}

func (a answer) agrees(b answer) bool {
	return a.kind == b.kind && a.sha256 == b.sha256 && a.length == b.length
}

// actor is one person or machine with its own trust directory and key
// store.
type actor struct {
	name string
	dir  string
	c    *client.Client
	key  *client.KeyInfo // the key it signs delegated roles with, if any
}

// repo is one repository on its own in-process signet-server (with its
// in-process signer), built step by step; do checks every client after each
// step.
type repo struct {
	t      *testing.T
	ctx    context.Context
	name   string // the flow, for the report
	url    string // server base URL
	gun    string
	root   []byte // root v1: what every engine pins
	owner  *actor
	engine *client.Client // a long-lived signet engine: cache and in-memory state carried across steps
	// goTUFDir is the metadata cache of the long-lived go-tuf updater.
	goTUFDir string
	tags     map[string]bool
	// signer is the server's in-process signer: the online timestamp and
	// snapshot keys, which a flow may use as an attacker holding them.
	signer *keystore.Signer
	// forged maps request paths to the bytes a hostile server answers
	// instead of the real server's (see forgeSnapshotWithout).
	forged atomic.Pointer[map[string][]byte]
	// tufjs, if set, also resolves every tag after every step.
	tufjs *tufJS
	steps int
}

func newRepo(t *testing.T, name string) *repo {
	t.Helper()
	r := &repo{t: t, ctx: context.Background(), name: name, gun: "registry.example.com/difftest/" + name, tags: map[string]bool{}, signer: keystore.NewMemory()}
	real := server.New(memstore.New(), r.signer, server.WithSweepInterval(0)).Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if f := r.forged.Load(); f != nil {
			if b, ok := (*f)[req.URL.EscapedPath()]; ok {
				w.Header().Set("Content-Type", "application/json")
				w.Write(b)
				return
			}
		}
		real.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	r.url = hs.URL
	r.owner = r.actor("owner", "")
	return r
}

// actor makes a trust directory; with role set, a key for it.
func (r *repo) actor(name, role string) *actor {
	r.t.Helper()
	dir := r.t.TempDir()
	c, err := client.New(client.Options{Server: r.url, TrustDir: dir, Keys: client.NewFileKeyStore(filepath.Join(dir, "private"), pass, 1<<10)})
	if err != nil {
		r.t.Fatal(err)
	}
	a := &actor{name: name, dir: dir, c: c}
	if role != "" {
		if a.key, err = c.Keys().Generate(r.ctx, role); err != nil {
			r.t.Fatal(err)
		}
	}
	if r.root != nil {
		r.pin(a.c)
	}
	return a
}

func (r *repo) pin(c *client.Client) {
	r.t.Helper()
	if err := c.PinRoot(r.gun, r.root); err != nil {
		r.t.Fatal(err)
	}
}

// initialised records root v1 (after Init or a ceremony's RootPublish) and
// starts the long-lived engine.
func (r *repo) initialised(root []byte) {
	r.t.Helper()
	r.root = root
	r.engine = r.actor("engine", "").c
	r.goTUFDir = filepath.Join(r.t.TempDir(), "gotuf")
	if err := os.Mkdir(r.goTUFDir, 0o700); err != nil {
		r.t.Fatal(err)
	}
}

// init is `signet init`: one root key and one targets key held by the
// owner.
func (r *repo) init() {
	r.t.Helper()
	root, err := r.owner.c.Init(r.ctx, r.gun)
	if err != nil {
		r.t.Fatalf("%s: init: %v", r.name, err)
	}
	r.initialised(root)
}

// do runs one step of the flow, then compares every client on every tag.
func (r *repo) do(step string, fn func() error) {
	r.t.Helper()
	r.steps++
	step = fmt.Sprintf("step %d %q", r.steps, step)
	if err := fn(); err != nil {
		r.t.Fatalf("flow %s, %s: %v", r.name, step, err)
	}
	r.check(step)
}

// try is do for a step that a correct server or client may refuse (an
// attack through the ordinary flows): a refusal is logged, and the clients
// are compared either way.
func (r *repo) try(step string, fn func() error) {
	r.t.Helper()
	r.steps++
	step = fmt.Sprintf("step %d %q", r.steps, step)
	if err := fn(); err != nil {
		r.t.Logf("flow %s, %s: refused: %v", r.name, step, err)
	}
	r.check(step)
}

// sign is `signet sign` (role "": the CLI's own choice of role).
func (r *repo) sign(a *actor, role string, tags ...string) (*client.Outcome, error) {
	changes := make([]client.Change, len(tags))
	for i, tag := range tags {
		changes[i] = client.Change{Tag: tag, Digest: digestOf(r.steps, tag), Size: int64(len(tag) + r.steps)}
		r.tags[tag] = true
	}
	out, err := a.c.PublishAs(r.ctx, r.gun, role, changes)
	if err != nil {
		return nil, fmt.Errorf("%s signs %v as %q: %w", a.name, tags, role, err)
	}
	return out, nil
}

// digestOf makes a tag's digest differ from step to step, so that a client
// answering from an old version is caught.
func digestOf(step int, tag string) digest.Digest {
	return digest.FromString(fmt.Sprintf("%s@%d", tag, step))
}

func (r *repo) unsign(a *actor, tags ...string) error {
	changes := make([]client.Change, len(tags))
	for i, tag := range tags {
		changes[i] = client.Change{Tag: tag, Remove: true}
	}
	_, err := a.c.Publish(r.ctx, r.gun, changes)
	return err
}

// edit is EditDelegations by a (the owner, or a delegate that delegates
// further). A staged outcome is approved by approvers in order until it is
// published: today's flows stage an edit when a re-signed role needs keys
// the editor lacks; a client whose delegations are "born published"
// (issue 13) also stages a new delegation for its delegate to approve.
func (r *repo) edit(a *actor, delegator string, fn func(*metadata.TargetsType) error, approvers ...*actor) error {
	out, err := a.c.EditDelegations(r.ctx, r.gun, delegator, fn)
	if err != nil {
		return fmt.Errorf("%s edits the delegations of %s: %w", a.name, delegator, err)
	}
	return r.settle(out, approvers...)
}

// settle approves a staged outcome with approvers until it is published.
func (r *repo) settle(out *client.Outcome, approvers ...*actor) error {
	if out.Staged == nil {
		return nil
	}
	for _, a := range approvers {
		done, err := r.approve(a, out.Staged.ID)
		if err != nil {
			return err
		}
		if done {
			r.t.Logf("flow %s: staged change %s published by %s's approval", r.name, out.Staged.ID, a.name)
			return nil
		}
	}
	return fmt.Errorf("staged change %s still waits for %v after the approvals of %d actor(s)", out.Staged.ID, out.Staged.Pending(), len(approvers))
}

// approve is `signet approve`: review, then sign. It reports whether the
// change was published.
func (r *repo) approve(a *actor, id string) (bool, error) {
	rv, err := a.c.ReviewStaged(r.ctx, r.gun, id)
	if err != nil {
		return false, fmt.Errorf("%s reviews staged change %s: %w", a.name, id, err)
	}
	st, err := a.c.Approve(r.ctx, r.gun, rv)
	if err != nil {
		return false, fmt.Errorf("%s approves staged change %s: %w", a.name, id, err)
	}
	return st.Published != nil, nil
}

// metadataURL is the TUF metadata base URL of the repository, as go-tuf's
// and tuf-js's updaters take it.
func (r *repo) metadataURL() string { return r.url + "/v2/" + r.gun + "/_trust/tuf/" }

// allTags is every tag ever signed plus the absent ones, sorted.
func (r *repo) allTags() []string {
	var out []string
	for tag := range r.tags {
		out = append(out, tag)
	}
	for _, tag := range absentTags {
		if !r.tags[tag] {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

// check resolves every tag with each client and compares it with the
// go-tuf updater in the same position: a fresh signet client (pinned to
// root v1, empty cache) and tuf-js against a fresh go-tuf updater; the
// long-lived signet engine against a go-tuf updater whose metadata
// directory has followed the repository since root v1 (a client that has
// seen an earlier snapshot must refuse some things a fresh one accepts, TUF
// §5.5.5). It reports every disagreement.
func (r *repo) check(step string) {
	r.t.Helper()
	tags := r.allTags()
	fresh := r.actor("fresh engine", "").c
	var js map[string]answer
	if r.tufjs != nil {
		js = r.tufjs.resolve(r.t, r.metadataURL(), r.root, tags)
	}
	type pair struct {
		who    string
		got    answer
		refWho string
		ref    answer
	}
	for _, tag := range tags {
		refFresh, refLong := r.goTUF(tag, ""), r.goTUF(tag, r.goTUFDir)
		pairs := []pair{
			{who: "signet (fresh)", got: r.signet(fresh, tag), refWho: "go-tuf (fresh)", ref: refFresh},
			{who: "signet (long-lived)", got: r.signet(r.engine, tag), refWho: "go-tuf (long-lived)", ref: refLong},
		}
		if r.tufjs != nil {
			pairs = append(pairs, pair{who: "tuf-js (fresh)", got: js[tag], refWho: "go-tuf (fresh)", ref: refFresh})
		}
		var report []string
		disagree := false
		for _, p := range pairs {
			mark := ""
			if !p.got.agrees(p.ref) {
				disagree, mark = true, "DISAGREES: "
			}
			report = append(report, fmt.Sprintf("%s: %s; %s: %s%s", p.refWho, p.ref, p.who, mark, p.got))
		}
		if disagree {
			r.t.Errorf("flow %s, %s, tag %q:\n\t%s", r.name, step, tag, strings.Join(report, "\n\t"))
		}
	}
}

// goTUF resolves tag with a new go-tuf updater: go-tuf's own fetcher and
// defaults; go-tuf walks the delegations itself (TUF §5.6). With dir "" it
// is a fresh machine: root v1, nothing cached, and what it verifies kept in
// memory only (DisableLocalCache: writing a cache per tag made file system
// calls most of this test's time). Otherwise dir is its metadata cache, kept
// across steps, and it starts from the newest root cached there (as
// signet's client does and go-tuf's documentation asks).
func (r *repo) goTUF(tag, dir string) answer {
	r.t.Helper()
	root := r.root
	if dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "root.json")); err == nil {
			root = b
		}
	}
	cfg, err := config.New(r.metadataURL(), root)
	if err != nil {
		r.t.Fatal(err)
	}
	if dir == "" {
		cfg.DisableLocalCache = true
	} else {
		cfg.LocalMetadataDir = dir
		cfg.LocalTargetsDir = dir + "-targets"
	}
	up, err := updater.New(cfg)
	if err != nil {
		return answer{kind: refused, detail: "go-tuf: " + err.Error()}
	}
	tf, err := up.GetTargetInfo(tag)
	if err != nil {
		// go-tuf's only "not found" is this untyped error of its walk;
		// every other error (a role missing from the snapshot, a bad
		// signature, a download error) is a refusal.
		if err.Error() == fmt.Sprintf("target %s not found", tag) {
			return answer{kind: notSigned}
		}
		return answer{kind: refused, detail: "go-tuf: " + err.Error()}
	}
	return answer{kind: found, sha256: hex.EncodeToString(tf.Hashes["sha256"]), length: tf.Length}
}

// signet resolves tag with c.Resolve.
func (r *repo) signet(c *client.Client, tag string) answer {
	got, err := c.Resolve(r.ctx, r.gun+":"+tag)
	switch {
	case err == nil:
		return answer{kind: found, sha256: got.Digest.Encoded(), length: got.Size}
	case errors.Is(err, client.ErrNotSigned):
		return answer{kind: notSigned, detail: err.Error()}
	}
	return answer{kind: refused, detail: err.Error()}
}

// rotateServerKey is POST …/{role}.key: the server makes a new online key
// for role; the old one keeps signing until a root stops naming it.
func (r *repo) rotateServerKey(role string) (*metadata.Key, error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, r.metadataURL()+role+".key", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("rotate the %s key: %d %s", role, resp.StatusCode, strings.TrimSpace(buf.String()))
	}
	var k metadata.Key
	if err := json.Unmarshal(buf.Bytes(), &k); err != nil {
		return nil, fmt.Errorf("rotate the %s key: %w", role, err)
	}
	return &k, nil
}

// forgeSnapshotWithout acts as whoever holds the online snapshot and
// timestamp keys (a compromised server, or its signer's host): from now on
// the server answers a snapshot that no longer lists role, one version
// above the real one, and a timestamp naming it. Issue 13: a client must
// refuse what such a snapshot leaves out, not walk past it.
func (r *repo) forgeSnapshotWithout(role string) error {
	base := "/v2/" + r.gun + "/_trust/tuf/"
	get := func(name string) ([]byte, error) {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url+base+name, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d", name, resp.StatusCode)
		}
		return buf.Bytes(), nil
	}
	root, err := metadata.Root().FromBytes(r.root)
	if err != nil {
		return err
	}
	tsBytes, err := get("timestamp.json")
	if err != nil {
		return err
	}
	ts, err := metadata.Timestamp().FromBytes(tsBytes)
	if err != nil {
		return err
	}
	snapBytes, err := get(fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version))
	if err != nil {
		return err
	}
	snap, err := metadata.Snapshot().FromBytes(snapBytes)
	if err != nil {
		return err
	}
	if _, ok := snap.Signed.Meta[role+".json"]; !ok {
		return fmt.Errorf("the snapshot does not list %s", role)
	}
	delete(snap.Signed.Meta, role+".json")
	snap.Signed.Version++
	if snapBytes, err = r.signOnline(metadata.SNAPSHOT, root.Signed.Roles[metadata.SNAPSHOT].KeyIDs, snap); err != nil {
		return err
	}
	sum := sha256.Sum256(snapBytes)
	ts.Signed.Version++
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snap.Signed.Version, Length: int64(len(snapBytes)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	if tsBytes, err = r.signOnline(metadata.TIMESTAMP, root.Signed.Roles[metadata.TIMESTAMP].KeyIDs, ts); err != nil {
		return err
	}
	r.forged.Store(&map[string][]byte{
		base + "timestamp.json": tsBytes,
		base + fmt.Sprintf("%d.snapshot.json", snap.Signed.Version): snapBytes,
	})
	return nil
}

// signOnline signs m with the server's online keys of role, through the
// server's own signer.
func (r *repo) signOnline(role string, keyIDs []string, m interface {
	ClearSignatures()
	ToBytes(bool) ([]byte, error)
}) ([]byte, error) {
	var signed any
	var add func(metadata.Signature)
	switch m := m.(type) {
	case *metadata.Metadata[metadata.SnapshotType]:
		signed, add = m.Signed, func(s metadata.Signature) { m.Signatures = append(m.Signatures, s) }
	case *metadata.Metadata[metadata.TimestampType]:
		signed, add = m.Signed, func(s metadata.Signature) { m.Signatures = append(m.Signatures, s) }
	default:
		return nil, fmt.Errorf("signOnline: %T", m)
	}
	payload, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, err
	}
	m.ClearSignatures()
	for _, id := range keyIDs {
		sig, err := r.signer.Sign(r.ctx, r.gun, role, id, payload)
		if err != nil {
			return nil, fmt.Errorf("sign %s with the online key %s: %w", role, id, err)
		}
		add(metadata.Signature{KeyID: id, Signature: sig})
	}
	return m.ToBytes(false)
}

// keyFile is where a's file key store keeps key id.
func (a *actor) keyFile(id string) string { return filepath.Join(a.dir, "private", id+".key") }

// rootSign signs root (replacing previous) with each of a's key files ids
// (the offline ceremony's `signet root sign --previous`).
func rootSign(root, previous []byte, a *actor, ids ...string) ([]byte, error) {
	for _, id := range ids {
		s, err := client.OpenKeyFile(a.keyFile(id), []byte(passphrase))
		if err != nil {
			return nil, err
		}
		if root, err = tufedit.SignRoot(root, s, previous); err != nil {
			return nil, err
		}
	}
	return root, nil
}
