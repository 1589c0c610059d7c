package policy_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/signetdev/signet/policy"
)

// A hook builds the policy once and asks it per pull; only Allow allows.
func Example() {
	dir, _ := os.MkdirTemp("", "policy")
	defer os.RemoveAll(dir)
	f, err := policy.Parse([]byte(`
server: {url: https://signet.example.com, timeout: 2s}
trust_dir: trust
rules:
  - match: docker.io/library/*
    require: none
`), dir)
	if err != nil {
		log.Fatal(err)
	}
	p, err := policy.New(f)
	if err != nil {
		log.Fatal(err)
	}
	for _, ref := range []string{"alpine:3.20", "quay.io/org/tool:1"} {
		d := p.Check(context.Background(), policy.Request{Ref: ref})
		fmt.Println(d.Allowed(), d)
	}
	// Output:
	// true allow: docker.io/library/alpine is allowed unsigned by rules[0] docker.io/library/*
	// false deny: no rule matches quay.io/org/tool and the default is deny
}
