package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// devRepo is a developer's side of one repository: its keys and targets.
type devRepo struct {
	server, gun string
	hc          *http.Client
	rootKey     signature.Signer
	targetsKey  signature.Signer
	targets     *metadata.Metadata[metadata.TargetsType]
}

func newSigner() (signature.Signer, *metadata.Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return nil, nil, err
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	return s, k, err
}

func (d *devRepo) tufURL() string { return d.server + "/v2/" + d.gun + "/_trust/tuf/" }

func (d *devRepo) serverKey(role string) (*metadata.Key, error) {
	resp, err := d.hc.Get(d.tufURL() + role + ".key")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var k metadata.Key
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s key: %d", role, resp.StatusCode)
	}
	return &k, json.NewDecoder(resp.Body).Decode(&k)
}

// initRepo publishes root v1 and targets v1 with tags tag-0 … tag-(n-1).
func initRepo(server, gun string, hc *http.Client, tags int) (*devRepo, error) {
	d := &devRepo{server: server, gun: gun, hc: hc}
	var rootPub, targetsPub *metadata.Key
	var err error
	if d.rootKey, rootPub, err = newSigner(); err != nil {
		return nil, err
	}
	if d.targetsKey, targetsPub, err = newSigner(); err != nil {
		return nil, err
	}
	ts, err := d.serverKey(metadata.TIMESTAMP)
	if err != nil {
		return nil, err
	}
	snap, err := d.serverKey(metadata.SNAPSHOT)
	if err != nil {
		return nil, err
	}
	root := metadata.Root(time.Now().AddDate(1, 0, 0))
	root.Signed.ConsistentSnapshot = true
	for role, k := range map[string]*metadata.Key{metadata.ROOT: rootPub, metadata.TARGETS: targetsPub, metadata.TIMESTAMP: ts, metadata.SNAPSHOT: snap} {
		if err := root.Signed.AddKey(k, role); err != nil {
			return nil, err
		}
	}
	if _, err := root.Sign(d.rootKey); err != nil {
		return nil, err
	}
	rootBytes, err := root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	d.targets = metadata.Targets(time.Now().AddDate(0, 3, 0))
	for i := range tags {
		d.targets.Signed.Targets[fmt.Sprintf("tag-%d", i)] = target(fmt.Sprintf("%s manifest %d", gun, i))
	}
	tb, err := d.signTargets()
	if err != nil {
		return nil, err
	}
	return d, d.publish(map[string][]byte{metadata.ROOT: rootBytes, metadata.TARGETS: tb})
}

func target(content string) *metadata.TargetFiles {
	sum := sha256.Sum256([]byte(content))
	return &metadata.TargetFiles{Length: int64(len(content)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

func (d *devRepo) signTargets() ([]byte, error) {
	d.targets.ClearSignatures()
	if _, err := d.targets.Sign(d.targetsKey); err != nil {
		return nil, err
	}
	return d.targets.ToBytes(false)
}

// nextTargets bumps targets, sets one tag to a new digest and signs it.
func (d *devRepo) nextTargets(tag string) ([]byte, error) {
	d.targets.Signed.Version++
	d.targets.Signed.Targets[tag] = target(fmt.Sprintf("%s %d", tag, d.targets.Signed.Version))
	return d.signTargets()
}

func multipartBody(files map[string][]byte) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for role, data := range files {
		w, _ := mw.CreateFormFile("files", role)
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func (d *devRepo) publish(files map[string][]byte) error {
	body, ct := multipartBody(files)
	return postBody(context.Background(), d.hc, d.tufURL(), body, ct)
}

// publishOp publishes the next targets of d, one tag changed. Only the POST
// is timed: what the server spends validating and storing the upload (and
// signing snapshot and timestamp), plus a loopback round trip; not the
// client's signing of the upload.
func publishOp(hc *http.Client, d *devRepo) op {
	return func(ctx context.Context, _ int, sw *stopwatch) error {
		tb, err := d.nextTargets("latest")
		if err != nil {
			return err
		}
		body, ct := multipartBody(map[string][]byte{metadata.TARGETS: tb})
		sw.restart()
		return postBody(ctx, hc, d.tufURL(), body, ct)
	}
}

func postBody(ctx context.Context, hc *http.Client, url string, body io.Reader, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	return nil
}
