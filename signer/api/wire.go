package api

import (
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
)

// The signer's wire format: JSON bodies over HTTPS with mutual TLS. Each
// operation is a POST to its own path, so GUNs (which contain "/") travel
// in bodies, never in paths. signerclient speaks the same types.

// Paths of the operations.
const (
	PathEnsureKey  = "/v1/keys/ensure"
	PathRotateKey  = "/v1/keys/rotate"
	PathPublicKey  = "/v1/keys/public"
	PathListKeys   = "/v1/keys/list"
	PathDeleteKeys = "/v1/keys/delete"
	PathSign       = "/v1/sign"
	PathSignBatch  = "/v1/sign/batch"
	// PathSignBatches signs several independent batches in one request
	// (SignBatchesRequest); signet-signer serves it since the release that
	// added it, and signerclient falls back to PathSignBatch on a 404.
	PathSignBatches = "/v1/sign/batches"
	PathHealth      = "/healthz"
	PathReady       = "/readyz"
)

// KeyRequest names a key slot: (gun, role), and the algorithm for new keys.
type KeyRequest struct {
	GUN       string           `json:"gun"`
	Role      string           `json:"role,omitempty"`
	Algorithm signer.Algorithm `json:"algorithm,omitempty"`
}

// SignRequest asks for a signature over Payload, the canonical JSON of a
// TUF metadata's "signed" object.
type SignRequest struct {
	GUN     string `json:"gun"`
	Role    string `json:"role"`
	KeyID   string `json:"key_id"`
	Payload []byte `json:"payload"`
}

// SignResponse carries the signature.
type SignResponse struct {
	Signature []byte `json:"signature"`
}

// SignBatchRequest asks for one signature per request, all or none (see
// signer.Service.SignBatch). At most signer.MaxBatch requests.
type SignBatchRequest struct {
	Requests []SignRequest `json:"requests"`
}

// SignBatchResponse carries the signatures, in the order of the requests.
type SignBatchResponse struct {
	Signatures [][]byte `json:"signatures"`
}

// MaxBatches bounds the batches of one SignBatchesRequest.
const MaxBatches = 32

// SignBatchesRequest carries independent batches, typically those of
// concurrent publishes that signerclient sends together: each is signed
// whole or refused whole on its own, as a SignBatchRequest would be.
type SignBatchesRequest struct {
	Batches []SignBatch `json:"batches"`
}

// SignBatch is one batch of a SignBatchesRequest. RequestID, if valid (see
// reqid.Valid), names the batch in the signer's log lines, as the
// X-Request-ID header of a single request does.
type SignBatch struct {
	RequestID string        `json:"request_id,omitempty"`
	Requests  []SignRequest `json:"requests"`
}

// SignBatchesResponse has one result per batch, in the order of the
// batches.
type SignBatchesResponse struct {
	Results []SignBatchResult `json:"results"`
}

// SignBatchResult is a batch's signatures, in the order of its requests,
// or, for a refused batch, the status and error item the same batch alone
// would have been answered with.
type SignBatchResult struct {
	Signatures [][]byte   `json:"signatures,omitempty"`
	Status     int        `json:"status,omitempty"`
	Error      *ErrorItem `json:"error,omitempty"`
}

// Key is a public key on the wire.
type Key struct {
	GUN       string        `json:"gun"`
	Role      string        `json:"role"`
	ID        string        `json:"id"`
	Public    *metadata.Key `json:"public"`
	CreatedAt time.Time     `json:"created_at"`
}

// KeyList is the answer to a list.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// Error codes of the signer's error envelope.
const (
	CodeKeyNotFound     = "KEY_NOT_FOUND"
	CodeRoleMismatch    = "ROLE_MISMATCH"
	CodeUnsupportedRole = "UNSUPPORTED_ROLE"
	CodeBadRequest      = "BAD_REQUEST"
	CodeInternal        = "INTERNAL_ERROR"
)

// ErrorBody is the error envelope, the same shape signet-server uses.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one error. Index names the refused payload of a refused
// batch (signer.BatchError).
type ErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Index   *int   `json:"index,omitempty"`
}

// ToWire converts a KeyInfo.
func ToWire(k *signer.KeyInfo) Key {
	return Key{GUN: k.GUN, Role: k.Role, ID: k.ID, Public: k.Public, CreatedAt: k.CreatedAt}
}

// FromWire converts back, checking that the key ID matches the key.
func FromWire(k Key) (*signer.KeyInfo, error) {
	if k.Public == nil {
		return nil, errMissingKey
	}
	id, err := k.Public.ID()
	if err != nil {
		return nil, err
	}
	if id != k.ID {
		return nil, errKeyIDMismatch
	}
	return &signer.KeyInfo{GUN: k.GUN, Role: k.Role, ID: k.ID, Public: k.Public, CreatedAt: k.CreatedAt}, nil
}
