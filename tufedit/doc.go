// Package tufedit edits TUF metadata offline, with no network and no key
// storage of its own:
//
//   - delegations: the delegated roles a targets-type role makes, as
//     signet delegation and signet signer edit them (AddDelegation,
//     AddDelegationKeys, RemoveDelegationKeys, SetDelegationThreshold,
//     RemoveDelegation; AddSigner and RemoveSigner with Docker's
//     targets/releases semantics), and the public keys they take
//     (ParsePublicKey);
//   - the root ceremony: a new root (NewRoot), its next version (NextRoot:
//     a rotation or a re-sign), one root key's signature (SignRoot) and who
//     signed to which threshold (VerifyRoot).
//
// Every edit checks tufrules' rules (role names, key types, distinct-key
// thresholds) and leaves its input unchanged when it fails. Signing keys
// come in as sigstore signers and new keys from a KeyGen, so the same code
// serves the key store of the client, a key file on a ceremony machine and
// a token. Publishing the result is the client's job (package client).
//
// It imports tufrules only of signet's packages; never client or server.
// Everything here is a function of its arguments, safe for concurrent use
// on distinct values.
package tufedit
