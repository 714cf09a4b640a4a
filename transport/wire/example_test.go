package wire_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/crust-p2p/crust/transport/wire"
)

func Example() {
	var stream bytes.Buffer
	w := wire.NewWriter(&stream, 4096)
	w.Write(wire.Data("hello"))
	w.Write(wire.Ping{Seq: 1})
	if err := w.Flush(); err != nil {
		fmt.Println("error:", err)
		return
	}

	r := wire.NewReader(&stream, 4096, wire.DefaultMaxFrameSize)
	for {
		m, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		switch m := m.(type) {
		case wire.Data:
			fmt.Printf("data %q\n", m)
		case wire.Ping:
			fmt.Println("ping", m.Seq)
		}
	}
	// Output:
	// data "hello"
	// ping 1
}
