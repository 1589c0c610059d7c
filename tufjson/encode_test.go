package tufjson_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufjson"
)

// TestEncodeMatchesGoTUF draws snapshots and timestamps of the shapes the
// server builds (and some it never does) and holds CanonicalSnapshot,
// CanonicalTimestamp and Envelope to cjson's and go-tuf's bytes, or to
// declining.
func TestEncodeMatchesGoTUF(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"targets.json", "targets/releases.json", "bin-0a.json", "a<b.json", "é.json", `q"uote.json`, "x&y.json"}
	zone := time.FixedZone("", 2*3600)
	encoded, declined := 0, 0
	for trial := range 2000 {
		exp := time.Date(2026+rng.IntN(3), 1, 1+rng.IntN(28), rng.IntN(24), 0, rng.IntN(60), rng.IntN(3)*int(rng.Int32N(1e9)), time.UTC)
		if rng.IntN(10) == 0 {
			exp = exp.In(zone)
		}
		meta := map[string]*metadata.MetaFiles{}
		for range rng.IntN(5) {
			mf := &metadata.MetaFiles{Version: rng.Int64N(1000)}
			if rng.IntN(2) == 0 {
				mf.Length = rng.Int64N(1 << 20)
			}
			for range rng.IntN(3) {
				h := make([]byte, 32)
				for i := range h {
					h[i] = byte(rng.IntN(256))
				}
				if mf.Hashes == nil {
					mf.Hashes = metadata.Hashes{}
				}
				mf.Hashes[[]string{"sha256", "sha512", "md5"}[rng.IntN(3)]] = h
			}
			if rng.IntN(40) == 0 {
				mf.UnrecognizedFields = map[string]any{"x": 1}
			}
			meta[names[rng.IntN(len(names))]] = mf
		}
		if rng.IntN(40) == 0 {
			meta = nil
		}
		var sigs []metadata.Signature
		if rng.IntN(5) > 0 {
			sigs = []metadata.Signature{}
			for range rng.IntN(3) {
				sig := make([]byte, 64)
				for i := range sig {
					sig[i] = byte(rng.IntN(256))
				}
				sigs = append(sigs, metadata.Signature{KeyID: fmt.Sprintf("%064x", rng.Uint64()), Signature: sig})
			}
		}
		var signed any
		var canon []byte
		var ok bool
		var want, wantBytes []byte
		var err error
		if trial%2 == 0 {
			m := metadata.Snapshot(exp)
			m.Signed.Version, m.Signed.Meta, m.Signatures = int64(trial), meta, sigs
			signed = m.Signed
			canon, ok = tufjson.CanonicalSnapshot(&m.Signed)
			if wantBytes, err = m.ToBytes(false); err != nil {
				t.Fatal(err)
			}
		} else {
			m := metadata.Timestamp(exp)
			m.Signed.Version, m.Signed.Meta, m.Signatures = int64(trial), meta, sigs
			signed = m.Signed
			canon, ok = tufjson.CanonicalTimestamp(&m.Signed)
			if wantBytes, err = m.ToBytes(false); err != nil {
				t.Fatal(err)
			}
		}
		if want, err = cjson.EncodeCanonical(signed); err != nil {
			t.Fatal(err)
		}
		if !ok {
			declined++
			continue
		}
		encoded++
		if !bytes.Equal(canon, want) {
			t.Fatalf("trial %d: canonical form\n got %s\nwant %s", trial, canon, want)
		}
		env, ok := tufjson.Envelope(canon, sigs)
		if !ok {
			t.Fatalf("trial %d: Envelope declined %v", trial, sigs)
		}
		if !bytes.Equal(env, wantBytes) {
			t.Fatalf("trial %d: envelope\n got %s\nwant %s", trial, env, wantBytes)
		}
	}
	t.Logf("%d encoded, %d declined", encoded, declined)
	if encoded < 500 || declined < 100 {
		t.Fatalf("%d encoded, %d declined: draw more varied cases", encoded, declined)
	}
}
