package bootstrap_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/crust-p2p/crust/bootstrap"
	"github.com/crust-p2p/crust/transport"
)

func Example() {
	dir, err := os.MkdirTemp("", "crust-bootstrap-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	seed, _ := transport.ParseContact("aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq@tcp://203.0.113.1:5483")
	cache, err := bootstrap.Open(bootstrap.Config{Dir: dir, HardCoded: []transport.Contact{seed}})
	if err != nil {
		log.Fatal(err) // bootstrap.ErrLocked if another node uses dir
	}
	defer cache.Close() // saves if changed, releases the lock

	peer, _ := transport.ParseContact("aibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaiba@tcp://192.0.2.7:5483,quic://192.0.2.7:5483")
	cache.RecordSuccess(peer, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	for _, c := range cache.Contacts(10) {
		fmt.Println(c)
	}
	// Output:
	// aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq@tcp://203.0.113.1:5483
	// aibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaiba@tcp://192.0.2.7:5483,quic://192.0.2.7:5483
}
