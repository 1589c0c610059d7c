package api_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/signetdev/signet/signer/api"
)

// The reference shapes: the same JSON, read by encoding/json's reflection
// (as the signer read its requests before codec.go).
type refRequest struct {
	GUN     string `json:"gun"`
	Role    string `json:"role"`
	KeyID   string `json:"key_id"`
	Payload []byte `json:"payload"`
}

type refBatch struct {
	RequestID string       `json:"request_id,omitempty"`
	Requests  []refRequest `json:"requests"`
}

type refBatches struct {
	Batches []refBatch `json:"batches"`
}

func toRef(in api.SignBatchesRequest) refBatches {
	var out refBatches
	if in.Batches != nil {
		out.Batches = []refBatch{}
	}
	for _, b := range in.Batches {
		rb := refBatch{RequestID: b.RequestID}
		if b.Requests != nil {
			rb.Requests = []refRequest{}
		}
		for _, r := range b.Requests {
			rb.Requests = append(rb.Requests, refRequest(r))
		}
		out.Batches = append(out.Batches, rb)
	}
	return out
}

func refDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var codecSeeds = []string{
	`{"batches":[{"request_id":"r1","requests":[{"gun":"example.com/app","role":"timestamp","key_id":"abc","payload":"eyJfdHlwZSI6InRpbWVzdGFtcCJ9"}]}]}`,
	` { "batches" : [ { "requests" : [ { "gun" : "a\u002fb" , "role":"snapshot","key_id":"k","payload":"" } , null ] } ] } `,
	`{"batches":null}`,
	`{"batches":[{"requests":null}]}`,
	`{}`,
	`null`,
	`{"batches":[{"requests":[{"gun":"caf\u00e9","role":"r\n","key_id":"\ud83d\ude00","payload":null}]}]}`,
	"{\"batches\":[{\"requests\":[{\"gun\":\"\xff\xfe\",\"role\":\"x\",\"key_id\":\"k\",\"payload\":\"AA==\"}]}]}",
}

// TestCodecStrictness: what encoding/json (with DisallowUnknownFields)
// refuses, the hand-written decoder refuses too, and it also refuses
// what encoding/json would have read leniently.
func TestCodecStrictness(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"batches":[{"requests":[{"gun":"a","extra":1}]}]}`, // unknown field
		`{"batches":[{"requests":[{"GUN":"a"}]}]}`,           // a name that only case-folds
		`{"batches":[{"requests":[{"gun":"a","gun":"b"}]}]}`, // twice
		`{"batches":[]} {}`, // trailing data
		`{"batches":[{"requests":[{"payload":"not base64!"}]}]}`,                  // base64
		`{"batches":[{"requests":[{"gun":1}]}]}`,                                  // wrong type
		`{"batches":[{"requests":[{"gun":"a"}]}]`,                                 // unterminated
		"{\"batches\":[{\"requests\":[{\"gun\":\"a\x01\"}]}]}",                    // control character
		`{"batches":[{"requests":[{"gun":"\x"}]}]}`,                               // bad escape
		`{"batches":[{"requests":[{"gun":"a",}]}]}`,                               // trailing comma
		`{"batches":[{"requests":[{"gun":"a"}],"request_id":"x","requests":[]}]}`, // twice, apart
	} {
		var v api.SignBatchesRequest
		if err := v.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	for _, in := range codecSeeds {
		var v api.SignBatchesRequest
		if err := v.UnmarshalJSON([]byte(in)); err != nil {
			t.Errorf("refused %s: %v", in, err)
		}
	}
}

// FuzzSignBatchesRequest: whatever the hand-written decoder accepts,
// encoding/json accepts too, with the same value; and what it writes reads
// back as the same value, through both.
func FuzzSignBatchesRequest(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got api.SignBatchesRequest
		if err := got.UnmarshalJSON(data); err != nil {
			return
		}
		var want refBatches
		if err := refDecode(data, &want); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(toRef(got), want) {
			t.Fatalf("%q: read as %+v, encoding/json reads %+v", data, toRef(got), want)
		}
		out := got.AppendJSON(nil)
		var again api.SignBatchesRequest
		if err := again.UnmarshalJSON(out); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%q: wrote %s, read back %+v (%v)", data, out, again, err)
		}
		var ref refBatches
		if err := refDecode(out, &ref); err != nil || !reflect.DeepEqual(ref, want) {
			t.Fatalf("wrote %s, encoding/json reads %+v (%v)", out, ref, err)
		}
	})
}

// TestCodecResponses: the answers read back as written, and as
// encoding/json writes them.
func TestCodecResponses(t *testing.T) {
	t.Parallel()
	one := 1
	resp := api.SignBatchesResponse{Results: []api.SignBatchResult{
		{Signatures: [][]byte{[]byte("sig-a"), {}}},
		{Status: 403, Error: &api.ErrorItem{Code: api.CodeRoleMismatch, Message: `payload is "targets" <metadata>`, Index: &one}},
	}}
	b, err := resp.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got api.SignBatchesResponse
	if err := got.UnmarshalJSON(b); err != nil || !reflect.DeepEqual(got, resp) {
		t.Fatalf("%s read back as %+v (%v)", b, got, err)
	}
	type refResult struct {
		Signatures [][]byte       `json:"signatures,omitempty"`
		Status     int            `json:"status,omitempty"`
		Error      *api.ErrorItem `json:"error,omitempty"`
	}
	ref, _ := json.Marshal(struct {
		Results []refResult `json:"results"`
	}{[]refResult{refResult(resp.Results[0]), refResult(resp.Results[1])}})
	if !bytes.Equal(b, ref) {
		t.Errorf("wrote %s, encoding/json writes %s", b, ref)
	}
	sb := api.SignBatchResponse{Signatures: [][]byte{[]byte("x"), []byte("yz")}}
	var sbGot api.SignBatchResponse
	if err := sbGot.UnmarshalJSON(sb.AppendJSON(nil)); err != nil || !reflect.DeepEqual(sbGot, sb) {
		t.Errorf("batch response: %+v (%v)", sbGot, err)
	}
	if refB, _ := json.Marshal(struct {
		Signatures [][]byte `json:"signatures"`
	}{sb.Signatures}); !bytes.Equal(refB, sb.AppendJSON(nil)) {
		t.Errorf("batch response: wrote %s, encoding/json writes %s", sb.AppendJSON(nil), refB)
	}
	for _, bad := range []string{`{"results":[{"status":1.5}]}`, `{"results":[{"status":01}]}`, `{"results":[{"x":1}]}`} {
		var v api.SignBatchesResponse
		if err := v.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
