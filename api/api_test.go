package api_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/signetdev/signet/api"
)

// The wire names are the contract: a change here breaks clients in the
// field.
func TestWireNames(t *testing.T) {
	created := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := api.StagedChange{ID: "ab12", Created: created, Expires: created.Add(time.Hour),
		Roles: []api.StagedRole{{Role: "targets/releases", Version: 2, BaseVersion: 1, Threshold: 2, SignedBy: []string{"k1"}}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"ab12","created":"2026-12-01T12:00:00Z","expires":"2026-12-01T13:00:00Z","roles":[{"role":"targets/releases","version":2,"base_version":1,"threshold":2,"signed_by":["k1"]}]}`
	if string(b) != want {
		t.Fatalf("staged change:\n%s\nwant\n%s", b, want)
	}
	var back api.StagedChange
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, st) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if p := back.Pending(); p["targets/releases"] != 1 || len(p) != 1 {
		t.Fatalf("pending %v", p)
	}

	eb := api.ErrorBody{Errors: []api.Error{{Code: api.CodeVersionConflict, Message: "m", Detail: map[string]string{"role": "targets"}}}}
	b, _ = json.Marshal(eb)
	if string(b) != `{"errors":[{"code":"VERSION_CONFLICT","message":"m","detail":{"role":"targets"}}]}` {
		t.Fatalf("error envelope %s", b)
	}
	var eback api.ErrorBody
	if err := json.Unmarshal(b, &eback); err != nil || eback.Errors[0].Code != api.CodeVersionConflict {
		t.Fatalf("error envelope round trip: %+v %v", eback, err)
	}

	pr, _ := json.Marshal(api.PublishResult{GUN: "g", Versions: map[string]int64{"targets": 3}})
	if string(pr) != `{"gun":"g","versions":{"targets":3}}` {
		t.Fatalf("publish result %s", pr)
	}
	cf, _ := json.Marshal(api.ChangefeedPage{Count: 1, Records: []api.Change{{ID: 7, GUN: "g", Category: "update", Version: 2, CreatedAt: created}}, Next: 7})
	if string(cf) != `{"count":1,"records":[{"id":7,"gun":"g","category":"update","version":2,"created_at":"2026-12-01T12:00:00Z"}],"next":7}` {
		t.Fatalf("change feed page %s", cf)
	}
}

func TestPaths(t *testing.T) {
	for got, want := range map[string]string{
		api.TUFPath("registry.example.com/team/app"):              "/v2/registry.example.com/team/app/_trust/tuf/",
		api.KeyPath("registry.example.com/team/app", "timestamp"): "/v2/registry.example.com/team/app/_trust/tuf/timestamp.key",
		api.StagedPath("registry.example.com/team/app", "ab"):     "/v2/registry.example.com/team/app/_trust/staged/ab",
		api.StagedPath("registry.example.com/team/app", ""):       "/v2/registry.example.com/team/app/_trust/staged/",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
