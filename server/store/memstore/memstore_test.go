package memstore_test

import (
	"testing"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.MetaStore { return memstore.New() })
}
