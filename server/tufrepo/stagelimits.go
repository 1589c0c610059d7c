package tufrepo

import (
	"context"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Limits on staged changes that are about who may stage and withdraw, not
// about TUF validity (server/staged.go applies them with the quotas of
// server/store).

// requireSignature refuses a staged change that carries no valid signature
// at all: staging is for collecting the missing signatures of a change
// someone who holds a key of one of its roles has signed, not free storage
// for anyone with push rights. Every signature present has been verified
// (signers) before this runs. (A delegated role re-signed by nobody is
// still stageable beside its delegator's change, signed by the delegator's
// key: Notary #1500.)
func requireSignature(roles []StagedRole) error {
	for _, sr := range roles {
		if len(sr.SignedBy) > 0 {
			return nil
		}
	}
	return refuse(CodeSignature, "", "a staged change needs at least one valid signature by a key of a role it changes; sign it with your key (signet sign or approve)")
}

// CheckKeyHolder reports (nil) whether files prove that the caller holds a
// key of a role of staged change id: some role in files carries a valid
// signature, by a key of that role, over the staged metadata, that the
// change does not carry yet. Signatures already on the change prove
// nothing (anyone who may read the change has them). It is what lets a
// key holder who did not stage a change withdraw it.
func (r *Repo) CheckKeyHolder(ctx context.Context, gun, id string, files map[string][]byte) error {
	ss := r.store
	if err := checkStageable(files); err != nil {
		return err
	}
	_, doc, err := r.loadStaged(ctx, ss, gun, id)
	if err != nil {
		return err
	}
	// The staged files with only the new signatures of the uploaded roles.
	fresh := make(map[string][]byte, len(doc.Files))
	for role, data := range doc.Files {
		m, err := metadata.Targets().FromBytes(data)
		if err != nil {
			return err
		}
		old := m.Signatures
		m.Signatures = nil
		if up, ok := files[role]; ok {
			am, err := metadata.Targets().FromBytes(up)
			if err != nil {
				return &Error{Code: CodeMalformed, Role: role, Msg: "not valid TUF targets metadata: " + err.Error(), Err: err}
			}
			for _, sig := range am.Signatures {
				if !slices.ContainsFunc(old, func(s metadata.Signature) bool { return s.KeyID == sig.KeyID }) {
					m.Signatures = append(m.Signatures, sig)
				}
			}
		}
		if fresh[role], err = m.ToBytes(false); err != nil {
			return err
		}
	}
	// mergeSignatures checks that each uploaded "signed" object is the
	// staged one; prepare verifies every signature with go-tuf.
	if _, err := mergeSignatures(doc.Files, files); err != nil {
		return err
	}
	p, err := r.prepare(ctx, gun, fresh, true)
	if err != nil {
		return err
	}
	for _, sr := range p.roles {
		if _, uploaded := files[sr.Role]; uploaded && len(sr.SignedBy) > 0 {
			return nil
		}
	}
	return refuse(CodeSignature, "", "the upload carries no new valid signature by a key of a role of staged change %s", id)
}
