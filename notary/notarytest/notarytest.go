// Package notarytest writes Notary v1 trust data for tests, in Notary's
// dialect (capitalised _type, base64 hashes, {keyid, method, sig}
// signatures, an ecdsa-x509 root key whose certificate CN is the GUN), as
// notary-server stores it and as a client trust directory keeps it, with
// Notary-style encrypted key files. It is imported only by tests; values
// are not safe for concurrent use.
package notarytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/youmark/pkcs8"

	"github.com/signetdev/signet/notary"
)

// Key is a Notary signing key.
type Key struct {
	Priv *ecdsa.PrivateKey
	Pub  notary.PublicKey
	ID   string
}

func newECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyOf(t testing.TB, priv *ecdsa.PrivateKey, typ string, public []byte) *Key {
	t.Helper()
	k := &Key{Priv: priv}
	k.Pub.Type = typ
	k.Pub.Value.Public = public
	id, err := k.Pub.ID()
	if err != nil {
		t.Fatal(err)
	}
	k.ID = id
	return k
}

// NewKey makes a bare ECDSA P-256 key (keytype "ecdsa").
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv := newECDSA(t)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, priv, notary.KeyECDSA, der)
}

// NewRootKey makes an ecdsa-x509 key with a self-signed certificate for
// cn, valid from notBefore for ten years.
func NewRootKey(t testing.TB, cn string, notBefore time.Time) *Key {
	t.Helper()
	priv := newECDSA(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore, NotAfter: notBefore.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, priv, notary.KeyECDSAX509, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Sign returns the Notary envelope of signed, signed by keys.
func Sign(t testing.TB, signed any, keys ...*Key) []byte {
	t.Helper()
	raw, err := cjson.EncodeCanonical(signed)
	if err != nil {
		t.Fatal(err)
	}
	env := notary.Envelope{Signed: raw, Signatures: []notary.Signature{}}
	sum := sha256.Sum256(raw)
	for _, k := range keys {
		r, s, err := ecdsa.Sign(rand.Reader, k.Priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		env.Signatures = append(env.Signatures, notary.Signature{KeyID: k.ID, Method: "ecdsa", Sig: sig})
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Meta is Notary's file meta of data.
func Meta(data []byte) notary.FileMeta {
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	return notary.FileMeta{Length: int64(len(data)), Hashes: map[string][]byte{"sha256": s256[:], "sha512": s512[:]}}
}

// Tag is the meta of an image manifest with this content.
func Tag(manifest string) notary.FileMeta {
	s := sha256.Sum256([]byte(manifest))
	return notary.FileMeta{Length: int64(len(manifest)), Hashes: map[string][]byte{"sha256": s[:]}}
}

// Delegation is a delegated role of a Repo.
type Delegation struct {
	Name      string
	Keys      []*Key
	Threshold int
	Paths     []string
	Tags      map[string]notary.FileMeta
	// Signers sign the role (default: Keys).
	Signers []*Key
	// Delegations are the roles this one delegates to (NAME/…).
	Delegations []*Delegation
}

// delegationsOf is the "delegations" object delegating to ds.
func delegationsOf(ds []*Delegation) map[string]any {
	dk := map[string]any{}
	roles := []any{}
	for _, d := range ds {
		var ids []string
		for _, k := range d.Keys {
			dk[k.ID] = key(k)
			ids = append(ids, k.ID)
		}
		roles = append(roles, map[string]any{"name": d.Name, "keyids": ids, "threshold": max(1, d.Threshold), "paths": d.Paths})
	}
	return map[string]any{"keys": dk, "roles": roles}
}

// Repo is a Notary repository: keys, tags and delegations of targets.
type Repo struct {
	GUN                                  string
	Root, Targets, Snapshot, Timestamp   *Key
	Tags                                 map[string]notary.FileMeta
	Delegations                          []*Delegation // delegated by targets, in order
	Expires, TimestampExpires, CertStart time.Time
	// Files holds the written documents by "role.version".
	Files map[string][]byte
}

// NewRepo makes a repository with fresh keys and no tags; its timestamp
// expires at tsExpires, everything else years later.
func NewRepo(t testing.TB, gun string, tsExpires time.Time) *Repo {
	t.Helper()
	start := tsExpires.AddDate(0, 0, -14)
	return &Repo{GUN: gun, Root: NewRootKey(t, gun, start), Targets: NewKey(t), Snapshot: NewKey(t), Timestamp: NewKey(t),
		Tags: map[string]notary.FileMeta{}, Expires: start.AddDate(3, 0, 0), TimestampExpires: tsExpires, CertStart: start}
}

func key(k *Key) map[string]any {
	return map[string]any{"keytype": k.Pub.Type, "keyval": map[string]any{"private": nil, "public": k.Pub.Value.Public}}
}

func meta(m notary.FileMeta) map[string]any {
	return map[string]any{"length": m.Length, "hashes": m.Hashes}
}

func metaMap(tags map[string]notary.FileMeta) map[string]any {
	out := map[string]any{}
	for k, v := range tags {
		out[k] = meta(v)
	}
	return out
}

// RootSigned is the signed part of root version v.
func (r *Repo) RootSigned(v int) map[string]any {
	role := func(k *Key) map[string]any { return map[string]any{"keyids": []string{k.ID}, "threshold": 1} }
	return map[string]any{"_type": "Root", "consistent_snapshot": false, "version": v, "expires": r.Expires.AddDate(7, 0, 0).Format(time.RFC3339Nano),
		"keys":  map[string]any{r.Root.ID: key(r.Root), r.Targets.ID: key(r.Targets), r.Snapshot.ID: key(r.Snapshot), r.Timestamp.ID: key(r.Timestamp)},
		"roles": map[string]any{"root": role(r.Root), "targets": role(r.Targets), "snapshot": role(r.Snapshot), "timestamp": role(r.Timestamp)}}
}

// Build signs every role at version 1 (root, targets, delegations,
// snapshot, timestamp) into Files. Tamper, if set, may change a role's
// signed object (by role name) before it is signed, or return signers.
func (r *Repo) Build(t testing.TB, tamper func(role string, signed map[string]any) []*Key) {
	t.Helper()
	r.Files = map[string][]byte{}
	sign := func(role string, signed map[string]any, keys ...*Key) []byte {
		if tamper != nil {
			if ks := tamper(role, signed); ks != nil {
				keys = ks
			}
		}
		b := Sign(t, signed, keys...)
		r.Files[role+".1"] = b
		return b
	}
	rootBytes := sign("root", r.RootSigned(1), r.Root)
	exp := r.Expires.Format(time.RFC3339Nano)
	snapMeta := map[string]any{"root": meta(Meta(rootBytes))}
	targets := sign("targets", map[string]any{"_type": "Targets", "version": 1, "expires": exp, "targets": metaMap(r.Tags), "delegations": delegationsOf(r.Delegations)}, r.Targets)
	snapMeta["targets"] = meta(Meta(targets))
	var signRoles func(ds []*Delegation)
	signRoles = func(ds []*Delegation) {
		for _, d := range ds {
			signers := d.Signers
			if signers == nil {
				signers = d.Keys
			}
			b := sign(d.Name, map[string]any{"_type": "Targets", "version": 1, "expires": exp, "targets": metaMap(d.Tags), "delegations": delegationsOf(d.Delegations)}, signers...)
			snapMeta[d.Name] = meta(Meta(b))
			signRoles(d.Delegations)
		}
	}
	signRoles(r.Delegations)
	snap := sign("snapshot", map[string]any{"_type": "Snapshot", "version": 1, "expires": exp, "meta": snapMeta}, r.Snapshot)
	sign("timestamp", map[string]any{"_type": "Timestamp", "version": 1, "expires": r.TimestampExpires.Format(time.RFC3339Nano), "meta": map[string]any{"snapshot": meta(Meta(snap))}}, r.Timestamp)
}

// WriteServerDir writes Files as notary-server stores them:
// DIR/<gun>/<role>.<version>.json.
func (r *Repo) WriteServerDir(t testing.TB, dir string) {
	t.Helper()
	for name, b := range r.Files {
		write(t, filepath.Join(dir, filepath.FromSlash(r.GUN), filepath.FromSlash(name)+".json"), b)
	}
}

// WriteTrustDir writes the latest Files as a client trust directory
// (DIR/tuf/<gun>/metadata/<role>.json) and, for each role in keys, its
// private keys as Notary writes them (DIR/private/<id>.key, role and gun
// headers), encrypted with pass[role] ("targets", or the delegation name).
func (r *Repo) WriteTrustDir(t testing.TB, dir string, pass map[string]string) {
	t.Helper()
	latest := map[string]int{}
	for name := range r.Files {
		role, v := splitName(name)
		latest[role] = max(latest[role], v)
	}
	for role, v := range latest {
		write(t, filepath.Join(dir, "tuf", filepath.FromSlash(r.GUN), "metadata", filepath.FromSlash(role)+".json"), r.Files[role+"."+strconv.Itoa(v)])
	}
	keys := map[string][]*Key{"targets": {r.Targets}}
	var collect func(ds []*Delegation)
	collect = func(ds []*Delegation) {
		for _, d := range ds {
			keys[d.Name] = d.Keys
			collect(d.Delegations)
		}
	}
	collect(r.Delegations)
	for role, p := range pass {
		for _, k := range keys[role] {
			WriteKey(t, dir, k, role, r.GUN, p)
		}
	}
}

// WriteKey writes k as Notary's encrypted key file for role of gun.
func WriteKey(t testing.TB, dir string, k *Key, role, gun, pass string) {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(k.Priv, []byte(pass), &pkcs8.Opts{Cipher: pkcs8.AES256CBC, KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 8, IterationCount: 2048, HMACHash: crypto.SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.Priv.PublicKey)
	bare := keyOf(t, k.Priv, notary.KeyECDSA, pubDER)
	headers := map[string]string{"role": role}
	if gun != "" {
		headers["gun"] = gun
	}
	write(t, filepath.Join(dir, "private", bare.ID+".key"), pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Headers: headers, Bytes: der}))
}

func splitName(name string) (string, int) {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			v, _ := strconv.Atoi(name[i+1:])
			return name[:i], v
		}
	}
	return name, 0
}

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Hex is the sha256 of m in hex.
func Hex(m notary.FileMeta) string { return hex.EncodeToString(m.Hashes["sha256"]) }

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
