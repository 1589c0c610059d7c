// Package difftest holds signet's differential test: repositories are built
// through the client library's flows (signers added and removed, delegations
// with paths, terminating and nested delegations, hashed bins, root and
// server-key rotations, staged k-of-n changes) against an in-process
// signet-server, and after every step each tag ever signed, and tags never
// signed, is resolved by signet's client.Resolve and by the reference TUF
// clients pointed at the same server with the same pinned root: go-tuf's own
// updater (always) and tuf-js (npm, for a few repositories). They must agree
// on every digest and length, and on every refusal.
//
// The package has only tests; this file exists for its documentation. It
// imports client/ (the library under test), server/ and its in-memory
// store and signer (the server the clients talk to), and go-tuf; nothing
// imports it. The tuf-js side is the Node script js/resolve.mjs with its
// pinned package-lock.json; the test installs it with `npm ci` when
// js/node_modules is missing, and fails, never skips, without node and npm.
package difftest
