package config_test

import (
	"fmt"
	"strings"

	"github.com/crust-p2p/crust/cmd/internal/config"
)

func ExampleLoad() {
	text := `
listen_port = 70000
listen_prot = 5484

[limits]
handshake_timeout = "ten seconds"
`
	_, err := config.Load(strings.NewReader(text), "crust.toml")
	fmt.Println(err)
	// Output:
	// crust.toml:3: unknown key "listen_prot" (did you mean "listen_port"?)
	// crust.toml:6: limits.handshake_timeout: "ten seconds" is not a duration like "10s" or "1m30s"
}
