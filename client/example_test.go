package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

// A developer initialises a repository and signs a tag; an engine on
// another machine pins the repository's root and resolves the tag.
func Example() {
	ctx := context.Background()
	// An in-process signet-server, for the example.
	hs := httptest.NewServer(server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0)).Handler())
	defer hs.Close()

	devDir, _ := os.MkdirTemp("", "dev")
	defer os.RemoveAll(devDir)
	pass := func(role, keyID string) ([]byte, error) { return []byte("correct horse battery staple"), nil }
	dev, err := client.New(client.Options{Server: hs.URL, TrustDir: devDir, Keys: client.NewFileKeyStore(devDir+"/private", pass, 1<<10)})
	if err != nil {
		log.Fatal(err)
	}
	root, err := dev.Init(ctx, "registry.example.com/team/app")
	if err != nil {
		log.Fatal(err)
	}
	d := digest.FromString("the manifest")
	if _, err := dev.Publish(ctx, "registry.example.com/team/app", []client.Change{{Tag: "1.2", Digest: d, Size: 12}}); err != nil {
		log.Fatal(err)
	}

	engineDir, _ := os.MkdirTemp("", "engine")
	defer os.RemoveAll(engineDir)
	engine, err := client.New(client.Options{Server: hs.URL, TrustDir: engineDir})
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.PinRoot("registry.example.com/team/app", root); err != nil {
		log.Fatal(err)
	}
	t, err := engine.Resolve(ctx, "registry.example.com/team/app:1.2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Digest == d, t.Size, t.Role)
	// Output: true 12 targets
}
