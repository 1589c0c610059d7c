// Package tufrules owns the TUF repository rules that signet's client and
// server share, so that what the server accepts and what an engine trusts
// are decided by one piece of code:
//
//   - role names: the grammar of delegated role names, with the top-level
//     names reserved case-insensitively (ValidateRoleName);
//   - keys: the key types and sizes accepted (ed25519, ECDSA P-256 under
//     either of its TUF names, RSA of at least 2048 bits), their
//     fingerprints, and key generation (CheckPublicKey, Fingerprint,
//     GenerateKey);
//   - roles: distinct-key threshold counting, duplicate key IDs refused in
//     every role (root included), and bounds on keys, delegations, hashed
//     bins and depth (CheckRoot, CheckDelegations, CheckRoleKeys);
//   - delegation: which delegated role may list which target path
//     (Delegates), and TUF's pre-order delegation walk (Walk), §5.6.7 of
//     the specification.
//
// Signature verification, versions, hashes and expiry stay go-tuf's
// (metadata, trustedmetadata): this package adds the rules go-tuf leaves to
// the repository and the walk it does not export.
//
// It imports go-tuf and the standard library only; it must never import a
// signet package. Everything here is a pure function, safe for concurrent
// use.
package tufrules
