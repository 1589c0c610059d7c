// The differential test resolves every tag with four clients after every
// step; the race detector slows that about fivefold without adding anything
// (the clients' concurrency is tested in client/): it runs without -race, as
// its own step of `make test`.

//go:build !race

package difftest

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// TestDifferential builds one repository per flow and, after every step,
// compares signet's Resolve with go-tuf's updater (and, where tufjs is set,
// with tuf-js) on every tag ever signed and on absentTags. A failure names
// the flow, the step, the tag and each side's answer.
func TestDifferential(t *testing.T) {
	flows := []struct {
		name  string
		tufjs bool
		run   func(r *repo)
	}{
		{"targets-only", false, flowTargetsOnly},
		{"signers", true, flowSigners},
		{"paths-terminating", false, flowPathsTerminating},
		{"nested", true, flowNested},
		{"hashed-bins", true, flowHashedBins},
		{"root-rotation", false, flowRootRotation},
		{"server-key-rotation", true, flowServerKeyRotation},
		{"staged-delegation", false, flowStagedDelegation},
		{"staged-targets", false, flowStagedTargets},
		{"no-consistent-snapshot", true, flowNoConsistentSnapshot},
		{"takeover", false, flowTakeover},
		{"compromised-snapshot-key", false, flowCompromisedSnapshotKey},
	}
	js := startTufJS(t)
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo(t, f.name)
			if f.tufjs {
				r.tufjs = js
			}
			start := time.Now()
			f.run(r)
			t.Logf("%d steps in %v", r.steps, time.Since(start).Round(time.Millisecond))
		})
	}
}

// published signs and requires the change to be published, not staged.
func (r *repo) published(a *actor, role string, tags ...string) func() error {
	return func() error {
		out, err := r.sign(a, role, tags...)
		if err == nil && out.Published == nil {
			err = fmt.Errorf("%s's signature of %v was staged (%v), want it published", a.name, tags, out.Staged.Pending())
		}
		return err
	}
}

// flowTargetsOnly: `signet sign` and `signet unsign` with the targets key.
func flowTargetsOnly(r *repo) {
	r.init()
	r.do("owner signs 1.0 and 1.1", r.published(r.owner, "", "1.0", "1.1"))
	r.do("owner re-signs 1.0", r.published(r.owner, "", "1.0"))
	r.do("owner unsigns 1.1", func() error { return r.unsign(r.owner, "1.1") })
}

// flowSigners: `signet signer add` / `signer remove` (docker trust signer
// add): targets/releases and targets/<signer>, signed from the signers' own
// trust directories; removing alice while her signature is the only one on
// targets/releases (Notary #1500) is staged for bob.
func flowSigners(r *repo) {
	r.init()
	alice, bob := r.actor("alice", "targets/alice"), r.actor("bob", "targets/bob")
	addSigner := func(a *actor) func() error {
		return func() error {
			return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
				return tufedit.AddSigner(tt, a.name, a.key.Public)
			}, a)
		}
	}
	r.do("owner signs owner-1", r.published(r.owner, "", "owner-1"))
	r.do("signer add alice", addSigner(alice))
	r.do("alice signs 1.0 (the CLI picks targets/releases)", r.published(alice, "", "1.0"))
	r.do("signer add bob", addSigner(bob))
	r.do("bob signs bob-1 into targets/bob", r.published(bob, "targets/bob", "bob-1"))
	r.do("alice signs alice-1 into targets/alice", r.published(alice, "targets/alice", "alice-1"))
	r.do("bob re-signs 1.0 (targets/releases)", r.published(bob, "", "1.0"))
	r.do("alice signs 1.2 (targets/releases, now signed by her alone)", r.published(alice, "", "1.2"))
	r.do("signer remove alice (re-signing targets/releases is staged for bob)", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.RemoveSigner(tt, "alice")
		}, bob)
	})
	r.do("owner signs owner-2", r.published(r.owner, "", "owner-2"))
	r.do("bob unsigns 1.2", func() error { return r.unsign(bob, "1.2") })
}

// flowPathsTerminating: `signet delegation add --paths [--terminating]`:
// the first matching delegation in pre-order wins; a terminating one ends
// the walk.
func flowPathsTerminating(r *repo) {
	r.init()
	first, second := r.actor("first", "targets/first"), r.actor("second", "targets/second")
	add := func(a *actor, name string, paths ...string) func() error {
		return func() error {
			return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
				return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: name, Keys: []*metadata.Key{a.key.Public}, Paths: paths})
			}, a)
		}
	}
	r.do("delegation add targets/first --paths app-* --paths release-*", add(first, "targets/first", "app-*", "release-*"))
	r.do("delegation add targets/second --paths *", add(second, "targets/second", "*"))
	r.do("second signs app-1", r.published(second, "targets/second", "app-1"))
	r.do("second and then first sign app-2", func() error {
		if _, err := r.sign(second, "targets/second", "app-2"); err != nil {
			return err
		}
		_, err := r.sign(first, "targets/first", "app-2")
		return err
	})
	r.do("first signs release-1", r.published(first, "targets/first", "release-1"))
	r.do("targets/first becomes terminating", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			for i := range tt.Delegations.Roles {
				if tt.Delegations.Roles[i].Name == "targets/first" {
					tt.Delegations.Roles[i].Terminating = true
				}
			}
			return nil
		})
	})
	r.do("second signs other", r.published(second, "targets/second", "other"))
	r.do("delegation remove targets/first", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.RemoveDelegation(tt, "targets/first")
		})
	})
	r.do("delegation add targets/first again, terminating, over its old metadata", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/first", Keys: []*metadata.Key{first.key.Public}, Paths: []string{"app-*"}, Terminating: true})
		}, first)
	})
	r.do("first signs app-3", r.published(first, "targets/first", "app-3"))
}

// flowNested: a delegate delegates further (targets → targets/team →
// targets/team/dave); the delegator's own listing is asked before its
// delegate's.
func flowNested(r *repo) {
	r.init()
	carol, dave := r.actor("carol", "targets/team"), r.actor("dave", "targets/team/dave")
	r.do("delegation add targets/team --paths team-*", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/team", Keys: []*metadata.Key{carol.key.Public}, Paths: []string{"team-*"}})
		}, carol)
	})
	r.do("carol signs team-1", r.published(carol, "targets/team", "team-1"))
	r.do("carol delegates targets/team/dave --paths team-dave-*", func() error {
		return r.edit(carol, "targets/team", func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/team/dave", Keys: []*metadata.Key{dave.key.Public}, Paths: []string{"team-dave-*"}})
		}, dave)
	})
	r.do("dave signs team-dave-1 and team-dave-2", r.published(dave, "targets/team/dave", "team-dave-1", "team-dave-2"))
	r.do("carol signs team-dave-2 herself (her listing comes first)", r.published(carol, "targets/team", "team-dave-2"))
	r.do("dave signs team-dave-3 (the CLI picks his role)", r.published(dave, "", "team-dave-3"))
	// A terminating delegation deeper down ends the whole walk: targets/zz,
	// listed after targets/team, is not asked for dave's tags either.
	zed := r.actor("zed", "targets/zz")
	r.do("delegation add targets/zz --paths * (after targets/team)", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/zz", Keys: []*metadata.Key{zed.key.Public}})
		}, zed)
	})
	r.do("zed signs team-dave-3, team-dave-7 and team-2", r.published(zed, "targets/zz", "team-dave-3", "team-dave-7", "team-2"))
	r.do("carol makes targets/team/dave terminating", func() error {
		return r.edit(carol, "targets/team", func(tt *metadata.TargetsType) error {
			for i := range tt.Delegations.Roles {
				if tt.Delegations.Roles[i].Name == "targets/team/dave" {
					tt.Delegations.Roles[i].Terminating = true
				}
			}
			return nil
		})
	})
	r.do("carol removes the delegation to dave", func() error {
		return r.edit(carol, "targets/team", func(tt *metadata.TargetsType) error {
			return tufedit.RemoveDelegation(tt, "targets/team/dave")
		})
	})
}

// flowHashedBins: `signet init --bins 16` on a repository with tags; tags
// move into their bins, later ones go there directly.
func flowHashedBins(r *repo) {
	r.init()
	r.do("owner signs 1.0 and 1.1", r.published(r.owner, "", "1.0", "1.1"))
	r.do("shard into 16 hashed bins", func() error {
		_, err := r.owner.c.Shard(r.ctx, r.gun, 16)
		return err
	})
	var tags []string
	for i := range 12 {
		tags = append(tags, fmt.Sprintf("build-%d", i))
	}
	r.do("owner signs build-0 … build-11", r.published(r.owner, "", tags...))
	r.do("owner unsigns build-3 and 1.1", func() error { return r.unsign(r.owner, "build-3", "1.1") })
	r.do("owner re-signs 1.0", r.published(r.owner, "", "1.0"))
}

// rootKeyIDs returns the root role's key IDs of a root.json.
func rootKeyIDs(root []byte) ([]string, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, err
	}
	return m.Signed.Roles[metadata.ROOT].KeyIDs, nil
}

// flowRootRotation: the offline ceremony's `root rotate` and `root resign`:
// engines pinned to root v1 follow the chain.
func flowRootRotation(r *repo) {
	r.init()
	root := r.root
	ids, err := rootKeyIDs(root)
	if err != nil {
		r.t.Fatal(err)
	}
	k1 := ids[0]
	k2, err := r.owner.c.Keys().Generate(r.ctx, metadata.ROOT)
	if err != nil {
		r.t.Fatal(err)
	}
	rotate := func(change tufedit.RootChange, signers ...string) func() error {
		return func() error {
			change.Expires = r.owner.c.Now().Add(client.RootLifetime)
			next, err := tufedit.NextRoot(root, change)
			if err != nil {
				return err
			}
			if next, err = rootSign(next, root, r.owner, signers...); err != nil {
				return err
			}
			if err := r.owner.c.RootPublish(r.ctx, r.gun, next); err != nil {
				return err
			}
			root = next
			return nil
		}
	}
	r.do("owner signs 1.0", r.published(r.owner, "", "1.0"))
	r.do("root v2: a second root key, threshold 2", rotate(tufedit.RootChange{AddKeys: []*metadata.Key{k2.Public}, Threshold: 2}, k1, k2.ID))
	r.do("owner signs 1.1", r.published(r.owner, "", "1.1"))
	r.do("root v3: the first root key removed, threshold 1", rotate(tufedit.RootChange{RemoveKeys: []string{k1}, Threshold: 1}, k1, k2.ID))
	r.do("root v4: re-signed (new expiry) by the remaining key", rotate(tufedit.RootChange{}, k2.ID))
	r.do("owner re-signs 1.0", r.published(r.owner, "", "1.0"))
}

// flowServerKeyRotation: the server's online timestamp and snapshot keys
// are rotated (POST …/{role}.key, as `signet key rotate` would), and a new
// root names the new keys.
func flowServerKeyRotation(r *repo) {
	r.init()
	root := r.root
	ids, err := rootKeyIDs(root)
	if err != nil {
		r.t.Fatal(err)
	}
	// swap makes the next root name only key for role.
	swap := func(role string, key *metadata.Key) func() error {
		return func() error {
			next, err := tufedit.NextRoot(root, tufedit.RootChange{Expires: r.owner.c.Now().Add(client.RootLifetime)})
			if err != nil {
				return err
			}
			m, err := metadata.Root().FromBytes(next)
			if err != nil {
				return err
			}
			newID, err := key.ID()
			if err != nil {
				return err
			}
			// RevokeKey refuses to leave a role without keys: add first.
			if err := m.Signed.AddKey(key, role); err != nil {
				return err
			}
			for _, id := range slices.Clone(m.Signed.Roles[role].KeyIDs) {
				if id != newID {
					if err := m.Signed.RevokeKey(id, role); err != nil {
						return err
					}
				}
			}
			if next, err = m.ToBytes(true); err != nil {
				return err
			}
			if next, err = rootSign(next, root, r.owner, ids...); err != nil {
				return err
			}
			if err := r.owner.c.RootPublish(r.ctx, r.gun, next); err != nil {
				return err
			}
			root = next
			return nil
		}
	}
	var ts, snap *metadata.Key
	r.do("owner signs 1.0", r.published(r.owner, "", "1.0"))
	r.do("server rotates its timestamp key (root v1 still names the old one)", func() (err error) {
		ts, err = r.rotateServerKey(metadata.TIMESTAMP)
		return err
	})
	r.do("owner signs 1.1", r.published(r.owner, "", "1.1"))
	r.do("root v2 names the new timestamp key only", func() error { return swap(metadata.TIMESTAMP, ts)() })
	r.do("server rotates its snapshot key", func() (err error) {
		snap, err = r.rotateServerKey(metadata.SNAPSHOT)
		return err
	})
	r.do("root v3 names the new snapshot key only", func() error { return swap(metadata.SNAPSHOT, snap)() })
	r.do("owner re-signs 1.0", r.published(r.owner, "", "1.0"))
}

// flowStagedDelegation: a 2-of-2 delegation completed by `signet approve`
// from the second trust directory, a threshold lowered, and a key revoked
// while its holder's signature is the only one (staged for the other).
func flowStagedDelegation(r *repo) {
	r.init()
	alice, bob := r.actor("alice", "targets/releases"), r.actor("bob", "targets/releases")
	var staged *client.Outcome
	r.do("delegation add targets/releases --key alice --key bob --threshold 2", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: tufedit.ReleasesRole, Keys: []*metadata.Key{alice.key.Public, bob.key.Public}, Threshold: 2})
		}, alice, bob)
	})
	r.do("alice signs 2.0: staged, waiting for bob", func() (err error) {
		if staged, err = r.sign(alice, "", "2.0"); err == nil && staged.Staged == nil {
			err = fmt.Errorf("one of two signatures was not staged: %+v", staged)
		}
		return err
	})
	r.do("bob approves 2.0", func() error { return r.settle(staged, bob) })
	r.do("owner lowers the threshold of targets/releases to 1", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.SetDelegationThreshold(tt, tufedit.ReleasesRole, 1)
		}, alice, bob)
	})
	r.do("alice signs 2.1 alone", r.published(alice, "", "2.1"))
	r.do("owner removes alice's key: staged, waiting for bob", func() (err error) {
		staged, err = r.owner.c.EditDelegations(r.ctx, r.gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.RemoveDelegationKeys(tt, tufedit.ReleasesRole, alice.key.ID)
		})
		if err == nil && staged.Staged == nil {
			err = fmt.Errorf("the revocation of the only signer's key was not staged: %+v", staged)
		}
		return err
	})
	r.do("bob approves the revocation", func() error { return r.settle(staged, bob) })
	r.do("bob signs 2.2", r.published(bob, "", "2.2"))
}

// flowStagedTargets: the ceremony makes targets 2-of-2 (`root init
// --targets-key a --targets-key b --targets-threshold 2`); the first
// publish carries both signatures, later ones are staged and approved.
func flowStagedTargets(r *repo) {
	o := r.owner.c
	ts, err := o.ServerKey(r.ctx, r.gun, metadata.TIMESTAMP)
	if err != nil {
		r.t.Fatal(err)
	}
	snap, err := o.ServerKey(r.ctx, r.gun, metadata.SNAPSHOT)
	if err != nil {
		r.t.Fatal(err)
	}
	a, err := o.Keys().Generate(r.ctx, metadata.TARGETS)
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := o.Keys().Generate(r.ctx, metadata.TARGETS)
	if err != nil {
		r.t.Fatal(err)
	}
	unsigned, err := tufedit.NewRoot(r.ctx, tufedit.RootPlan{Keys: 1, Threshold: 1, TargetsKeys: []*metadata.Key{a.Public, b.Public}, TargetsThreshold: 2, Timestamp: ts, Snapshot: snap, Expires: o.Now().Add(client.RootLifetime)}, client.KeyGen(o.Keys()))
	if err != nil {
		r.t.Fatal(err)
	}
	ids, err := rootKeyIDs(unsigned)
	if err != nil {
		r.t.Fatal(err)
	}
	root, err := rootSign(unsigned, nil, r.owner, ids...)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := o.RootPublish(r.ctx, r.gun, root); err != nil {
		r.t.Fatal(err)
	}
	// Key b goes to the co-owner, and leaves the owner's machine.
	co := r.actor("co-owner", "")
	pem, err := o.Keys().Export(r.ctx, b.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := co.c.Keys().Import(r.ctx, metadata.TARGETS, pem); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Remove(r.owner.keyFile(b.ID)); err != nil {
		r.t.Fatal(err)
	}
	r.initialised(root)
	r.pin(co.c)

	var staged *client.Outcome
	stage := func(who *actor, tags ...string) func() error {
		return func() (err error) {
			if staged, err = r.sign(who, "", tags...); err == nil && staged.Staged == nil {
				err = fmt.Errorf("one of two targets signatures was not staged: %+v", staged)
			}
			return err
		}
	}
	r.do("owner signs 1.0: staged, waiting for the co-owner", stage(r.owner, "1.0"))
	r.do("co-owner approves 1.0", func() error { return r.settle(staged, co) })
	r.do("co-owner signs 1.1: staged, waiting for the owner", stage(co, "1.1"))
	r.do("owner approves 1.1", func() error { return r.settle(staged, r.owner) })
}

// flowTakeover is issue 13's second weakness, through the ordinary flows:
// targets delegates targets/alice (alice-*, alice's key) and targets/team
// (*, bob's key); team delegates targets/bob (bob's key). Alice then
// delegates targets/bob from her own role to her own key, which re-creates
// targets/bob signed by her. A correct server refuses that (or the walk
// through team refuses her targets/bob); clients must agree either way,
// also when one resolution has already verified targets/bob through alice
// (issue 13's fourth weakness: a role verified through one delegator reused
// on another path).
func flowTakeover(r *repo) {
	r.init()
	alice, bob := r.actor("alice", "targets/alice"), r.actor("bob", "targets/team")
	delegate := func(by *actor, delegator string, to *actor, name string, paths ...string) func() error {
		return func() error {
			return r.edit(by, delegator, func(tt *metadata.TargetsType) error {
				return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: name, Keys: []*metadata.Key{to.key.Public}, Paths: paths})
			}, to)
		}
	}
	r.do("delegation add targets/alice --paths alice-* (alice's key)", delegate(r.owner, metadata.TARGETS, alice, "targets/alice", "alice-*"))
	r.do("delegation add targets/team --paths * (bob's key)", delegate(r.owner, metadata.TARGETS, bob, "targets/team", "*"))
	r.do("alice signs alice-1, bob signs team-1", func() error {
		if _, err := r.sign(alice, "targets/alice", "alice-1"); err != nil {
			return err
		}
		_, err := r.sign(bob, "targets/team", "team-1")
		return err
	})
	r.do("bob delegates targets/bob (his key) from targets/team", delegate(bob, "targets/team", bob, "targets/bob"))
	r.do("bob signs bob-1 into targets/bob", r.published(bob, "targets/bob", "bob-1"))
	r.try("alice delegates targets/bob to her own key from targets/alice", delegate(alice, "targets/alice", alice, "targets/bob"))
	r.try("alice signs alice-2 into targets/bob", r.published(alice, "targets/bob", "alice-2"))
	r.try("bob signs bob-2 into targets/bob", r.published(bob, "targets/bob", "bob-2"))
}

// flowCompromisedSnapshotKey is issue 13's third weakness: whoever holds
// the online snapshot key serves a snapshot without targets/releases. The
// reference clients refuse every tag whose walk reaches targets/releases;
// a client that treats the missing role as empty resolves 1.0 to the
// digest targets/ci signed instead.
func flowCompromisedSnapshotKey(r *repo) {
	r.init()
	rel, ci := r.actor("releaser", tufedit.ReleasesRole), r.actor("ci", "targets/ci")
	add := func(a *actor, name string) func() error {
		return func() error {
			return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
				return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: name, Keys: []*metadata.Key{a.key.Public}})
			}, a)
		}
	}
	r.do("delegation add targets/releases", add(rel, tufedit.ReleasesRole))
	r.do("delegation add targets/ci", add(ci, "targets/ci"))
	r.do("owner signs owner-1; releaser signs 1.0", func() error {
		if _, err := r.sign(r.owner, metadata.TARGETS, "owner-1"); err != nil {
			return err
		}
		_, err := r.sign(rel, tufedit.ReleasesRole, "1.0")
		return err
	})
	r.do("ci signs 1.0 (another digest) and ci-1", r.published(ci, "targets/ci", "1.0", "ci-1"))
	r.do("the holder of the online snapshot key serves a snapshot without targets/releases", func() error {
		return r.forgeSnapshotWithout(tufedit.ReleasesRole)
	})
}

// flowNoConsistentSnapshot: a root with consistent_snapshot false; clients
// then fetch the latest {role}.json instead of {version}.{role}.json, for
// delegated roles too.
func flowNoConsistentSnapshot(r *repo) {
	r.init()
	ids, err := rootKeyIDs(r.root)
	if err != nil {
		r.t.Fatal(err)
	}
	ci := r.actor("ci", "targets/ci")
	r.do("root v2 with consistent_snapshot false", func() error {
		next, err := tufedit.NextRoot(r.root, tufedit.RootChange{Expires: r.owner.c.Now().Add(client.RootLifetime)})
		if err != nil {
			return err
		}
		m, err := metadata.Root().FromBytes(next)
		if err != nil {
			return err
		}
		m.Signed.ConsistentSnapshot = false
		if next, err = m.ToBytes(true); err != nil {
			return err
		}
		if next, err = rootSign(next, r.root, r.owner, ids...); err != nil {
			return err
		}
		return r.owner.c.RootPublish(r.ctx, r.gun, next)
	})
	r.do("owner signs 1.0", r.published(r.owner, "", "1.0"))
	r.do("delegation add targets/ci --paths release-*", func() error {
		return r.edit(r.owner, metadata.TARGETS, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/ci", Keys: []*metadata.Key{ci.key.Public}, Paths: []string{"release-*"}})
		}, ci)
	})
	r.do("ci signs release-1", r.published(ci, "", "release-1"))
	r.do("ci re-signs release-1", r.published(ci, "", "release-1"))
}
